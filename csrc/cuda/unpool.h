// Max unpooling for CUDA: per-element bodies and host side, templated on the
// Runner of impl.h so that tests/cuda_emulation.cpp can run the very same
// code on the host.
//
// One thread per input element.  Forward: out[plane].flat[indices[e]] =
// input[e] into a zero-filled output; backward: grad_input[e] =
// grad_output[plane].flat[indices[e]].  An index outside [0, plane size) is
// never used as an address: the element is skipped (backward: set to 0) and
// its logical position goes into a one-element flag with an atomic min, so
// the host names the first bad index in input order after one small
// device-to-host copy.  With duplicated indices the forward is a race between
// threads, as in torch (which therefore raises under
// torch.use_deterministic_algorithms(True); so does poolext on CUDA).
//
// Values are copied as bits, so one instance per element width serves every
// dtype.  index_t (int32 behind Runner::fits_int32, else int64) is used for
// the flat index and its decomposition; offsets are int64.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/macros/Macros.h>

#include <cstdint>
#include <type_traits>

#include "../core/run.h"
#include "../core/unpool.h"

namespace poolext {
namespace cuda {

// Keeps the lowest pos in *slot (initially all ones).
C10_HOST_DEVICE inline void record_bad(unsigned long long* slot, int64_t pos) {
#if defined(__CUDA_ARCH__)
  atomicMin(slot, static_cast<unsigned long long>(pos));
#else
  if (static_cast<unsigned long long>(pos) < *slot) *slot = static_cast<unsigned long long>(pos);
#endif
}

C10_HOST_DEVICE inline bool index_ok(int64_t j, int64_t size) {
  return static_cast<uint64_t>(j) < static_cast<uint64_t>(size);
}

// Element e of a tensor shaped like the input: the offset of its (n, c)
// plane's origin in a tensor with `plane` positions per plane (same layout),
// the step between positions, and e's logical position (n * C + c) * S + s.
template <bool CL, typename index_t>
struct UnpoolPos {
  int64_t origin, step, logical;
  C10_HOST_DEVICE UnpoolPos(index_t e, int64_t C, int64_t S, int64_t plane) {
    if (CL) {
      const index_t c = e % static_cast<index_t>(C);
      const index_t ns = e / static_cast<index_t>(C);
      const index_t s = ns % static_cast<index_t>(S);
      const index_t n = ns / static_cast<index_t>(S);
      origin = static_cast<int64_t>(n) * plane * C + c;
      step = C;
      logical = (static_cast<int64_t>(n) * C + c) * S + s;
    } else {
      origin = static_cast<int64_t>(e / static_cast<index_t>(S)) * plane;
      step = 1;
      logical = e;
    }
  }
};

template <bool CL, typename T, typename index_t>
struct UnpoolScatter {
  using index_type = index_t;
  const T* in;
  const int64_t* indices;
  T* out;
  int64_t C, in_plane, out_plane;
  unsigned long long* bad;

  C10_HOST_DEVICE void operator()(index_t e) const {
    const UnpoolPos<CL, index_t> p(e, C, in_plane, out_plane);
    const int64_t j = indices[e];
    if (!index_ok(j, out_plane)) {
      record_bad(bad, p.logical);
      return;
    }
    out[p.origin + j * p.step] = in[e];
  }
};

template <bool CL, typename T, typename index_t>
struct UnpoolGather {
  using index_type = index_t;
  const T* grad_out;
  const int64_t* indices;
  T* grad_in;
  int64_t C, in_plane, out_plane;
  unsigned long long* bad;

  C10_HOST_DEVICE void operator()(index_t e) const {
    const UnpoolPos<CL, index_t> p(e, C, in_plane, out_plane);
    const int64_t j = indices[e];
    if (!index_ok(j, out_plane)) {
      grad_in[e] = T(0);
      record_bad(bad, p.logical);
      return;
    }
    grad_in[e] = grad_out[p.origin + j * p.step];
  }
};

// Calls f(T{}) with the unsigned integer type of `bytes` bytes.
template <typename F>
void dispatch_width(size_t bytes, F&& f) {
  switch (bytes) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: TORCH_CHECK(false, "poolext: unexpected element size ", std::to_string(bytes));
  }
}

// Runs make(layout, index, flag) over the n input elements (see
// run_elements in core/run.h), then raises if an index was out of range.
template <typename Runner, typename Make>
void run_unpool(const char* op, const Runner& run, const Unpool& u, const at::Tensor& ix,
                Make&& make) {
  // All ones: no bad index (as unsigned, above every position).
  at::Tensor flag = at::full({1}, -1, ix.options());
  auto* slot = reinterpret_cast<unsigned long long*>(flag.mutable_data_ptr<int64_t>());
  const int64_t n = u.in_numel();
  run_elements(run, u.channels_last, n, std::max(n, u.out_numel()),
               [&](auto cl, auto index) { return make(cl, index, slot); });
  const int64_t pos = flag.item<int64_t>();  // the one device-to-host copy
  if (pos != -1) {
    const int64_t off = u.in_offset(pos);
    bad_index(op, u, pos, ix.as_strided({ix.numel()}, {1}).select(0, off).item<int64_t>());
  }
}

inline bool cuda_dtype_ok(at::ScalarType t) {
  switch (t) {
    case at::kFloat: case at::kDouble: case at::kHalf: case at::kBFloat16:
    case at::kByte: case at::kChar: case at::kShort: case at::kInt: case at::kLong:
      return true;
    default:
      return false;
  }
}

template <typename Runner>
at::Tensor max_unpool_impl(const Runner& run, const at::Tensor& self, const at::Tensor& indices,
                           c10::SymIntArrayRef output_size_sym, bool channels_last) {
  const char* op = "poolext.max_unpool";
  const auto output_size = C10_AS_INTARRAYREF_SLOW(output_size_sym);
  const Unpool u = unpool_prologue(op, self, indices, output_size, channels_last);
  const auto mf = u.memory_format();
  // (at::zeros would drop the memory format.)
  at::Tensor out = at::empty(u.out_shape, self.options().memory_format(mf)).zero_();
  // As torch's CUDA kernels: nothing to do (and no dtype dispatch) for an
  // empty input; an empty output with a non-empty input has only bad indices.
  if (u.in_numel() == 0) return out;
  TORCH_CHECK_NOT_IMPLEMENTED(cuda_dtype_ok(self.scalar_type()), op, ": input dtype ",
                              self.scalar_type(), " is not supported on ",
                              self.device().type(), " (float, integer, float16 and bfloat16 "
                              "types are)");
  if (u.out_numel() == 0) return out;
  const at::Tensor x = self.contiguous(mf);
  const at::Tensor ix = indices.contiguous(mf);
  dispatch_width(x.element_size(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(x.const_data_ptr());
    const int64_t* idx = ix.const_data_ptr<int64_t>();
    T* o = static_cast<T*>(out.mutable_data_ptr());
    run_unpool(op, run, u, ix, [&](auto cl, auto index, unsigned long long* slot) {
      return UnpoolScatter<decltype(cl)::value, T, decltype(index)>{
          in, idx, o, u.C, u.in_plane, u.out_plane, slot};
    });
  });
  return out;
}

template <typename Runner>
at::Tensor max_unpool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                    const at::Tensor& indices,
                                    c10::SymIntArrayRef output_size_sym, bool channels_last) {
  const char* op = "poolext.max_unpool_backward";
  const auto output_size = C10_AS_INTARRAYREF_SLOW(output_size_sym);
  UnpoolBackward b = unpool_backward_setup(op, grad_output, indices, output_size, channels_last);
  if (b.done) return b.grad_input;
  const Unpool& u = b.u;
  const at::Tensor &go = b.go, &ix = b.ix;
  at::Tensor& grad_input = b.grad_input;
  dispatch_width(go.element_size(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(go.const_data_ptr());
    const int64_t* idx = ix.const_data_ptr<int64_t>();
    T* gi = static_cast<T*>(grad_input.mutable_data_ptr());
    run_unpool(op, run, u, ix, [&](auto cl, auto index, unsigned long long* slot) {
      return UnpoolGather<decltype(cl)::value, T, decltype(index)>{
          g, idx, gi, u.C, u.in_plane, u.out_plane, slot};
    });
  });
  return grad_input;
}

}  // namespace cuda
}  // namespace poolext
