// Argument checks and problem set-up of max_unpool and its backward, shared
// by the CPU and CUDA ops.
//
// Unpooling is a scatter inside each (n, c) plane: out.plane[indices[i]] =
// input[i], every other output element zero.  Its backward is the gather at
// the same indices.  Both refuse an index outside [0, output plane size): the
// check sits next to the access, so no address is ever formed from a bad
// index, and the first bad index in the input's logical (n, c, d, h, w) order
// is the one the error names.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>
#include <c10/util/safe_numerics.h>

#include <cstdint>
#include <string>
#include <vector>

#include "problem.h"

namespace poolext {

struct Unpool {
  int rank = 0;           // spatial rank, 1..3 (= output_size.size())
  bool batched = true;    // input has an N dim
  bool channels_last = false;
  int64_t N = 1, C = 1;
  int64_t in_plane = 1;   // input (and indices) elements per (n, c) plane
  int64_t out_plane = 1;  // output elements per (n, c) plane
  std::vector<int64_t> in_shape, out_shape;
  std::vector<int64_t> out_spatial;

  at::MemoryFormat memory_format() const {
    if (!channels_last) return at::MemoryFormat::Contiguous;
    return rank == 2 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
  }
  int64_t planes() const { return N * C; }
  int64_t in_numel() const { return N * C * in_plane; }
  int64_t out_numel() const { return N * C * out_plane; }

  // Offset in memory of logical element pos = plane * in_plane + s of a
  // tensor shaped like the input, laid out in memory_format().
  int64_t in_offset(int64_t pos) const {
    if (!channels_last) return pos;
    const int64_t plane = pos / in_plane, s = pos % in_plane;
    const int64_t n = plane / C, c = plane % C;
    return (n * in_plane + s) * C + c;
  }

  // "(n, c, d, h, w)" of logical input element pos, unbatched without n.
  std::string in_position(int64_t pos) const {
    std::vector<int64_t> at(in_shape.size());
    int64_t rest = pos;
    for (size_t i = at.size(); i-- > 0;) {
      at[i] = rest % in_shape[i];
      rest /= in_shape[i];
    }
    std::string s = "[";
    for (size_t i = 0; i < at.size(); ++i) s += (i ? ", " : "") + std::to_string(at[i]);
    return s + "]";
  }

  // As torch prints it: "HxW" or "TxHxW"; 1d as torch unpools it, as 2d (L x 1).
  std::string out_size_str() const {
    std::string s;
    for (size_t i = 0; i < out_spatial.size(); ++i) {
      s += (i ? "x" : "") + std::to_string(out_spatial[i]);
    }
    return out_spatial.size() == 1 ? s + "x1" : s;
  }
};

// `sizes`: the input's (= the indices') sizes.
inline Unpool make_unpool(const char* op, c10::IntArrayRef sizes, c10::IntArrayRef output_size,
                          bool channels_last) {
  const int64_t r = static_cast<int64_t>(output_size.size());
  TORCH_CHECK(r >= 1 && r <= 3, op, ": output_size must have 1, 2 or 3 entries, got output_size=",
              list_str(output_size));
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(ndim == r + 1 || ndim == r + 2, op, ": expected a ", num(r + 1), "D (unbatched) or ",
              num(r + 2), "D (batched) input, got input of shape ", list_str(sizes));
  for (int64_t i = ndim == r + 2 ? 1 : 0; i < ndim; ++i) {
    TORCH_CHECK(sizes[i] > 0, op,
                ": input dims other than the batch dim must be non-zero, got input of shape ",
                list_str(sizes));
  }
  for (int64_t a = 0; a < r; ++a) {
    TORCH_CHECK(output_size[a] >= 0, op,
                ": output_size must be non-negative, got output_size=", list_str(output_size));
  }
  TORCH_CHECK(!channels_last || (r >= 2 && ndim == r + 2), op,
              ": channels_last needs a batched 2d or 3d input");
  Unpool u;
  u.rank = static_cast<int>(r);
  u.batched = ndim == r + 2;
  u.channels_last = channels_last;
  u.N = u.batched ? sizes[0] : 1;
  u.C = sizes[ndim - r - 1];
  u.in_shape.assign(sizes.begin(), sizes.end());
  u.out_spatial.assign(output_size.begin(), output_size.end());
  u.out_shape.assign(sizes.begin(), sizes.end() - r);
  int64_t out_numel = u.N * u.C;  // the input exists, so N * C fits
  u.in_plane = 1;
  u.out_plane = 1;
  for (int64_t a = 0; a < r; ++a) {
    u.in_plane *= sizes[ndim - r + a];
    u.out_shape.push_back(output_size[a]);
    bool overflow = c10::mul_overflows(u.out_plane, output_size[a], &u.out_plane);
    overflow |= c10::mul_overflows(out_numel, output_size[a], &out_numel);
    TORCH_CHECK(!overflow, op, ": an output of shape ", list_str(u.out_shape),
                " has more than 2^63-1 elements");
  }
  return u;
}

// The dtypes that unpooling and its backward take as floating point values.
inline bool unpool_float_type(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

inline void check_indices(const char* op, c10::IntArrayRef sizes, const at::Tensor& indices) {
  TORCH_CHECK(indices.scalar_type() == at::kLong, op,
              ": indices must be an int64 tensor, got indices of dtype ", indices.scalar_type());
  TORCH_CHECK(indices.sizes() == sizes, op, ": indices of shape ", list_str(indices.sizes()),
              " do not match the input of shape ", list_str(sizes));
}

// Indices on another device than the tensor they index.  (On CUDA,
// check_device of cuda/common.cuh has refused a CPU tensor already.)
inline void check_same_device(const char* op, const at::Tensor& indices, const char* name,
                              const at::Tensor& t) {
  TORCH_CHECK(indices.device() == t.device(), op, ": indices are on ", indices.device(),
              " but ", name, " is on ", t.device());
}

// The prologue of max_unpool on either device: the checked indices and
// problem.  What an empty input or output returns, which dtypes are taken
// and how the output is zeroed differ between torch's CPU and CUDA kernels,
// so each device's op goes on from here as torch's does.
inline Unpool unpool_prologue(const char* op, const at::Tensor& self, const at::Tensor& indices,
                              c10::IntArrayRef output_size, bool channels_last) {
  check_same_device(op, indices, "the input", self);
  check_indices(op, self.sizes(), indices);
  return make_unpool(op, self.sizes(), output_size, channels_last);
}

// The prologue of max_unpool_backward on either device: the checked
// problem, output and inputs; `done` when grad_input needs no kernel (empty
// input, or an empty output, on which no input element depends: a zero
// gradient).
struct UnpoolBackward {
  Unpool u;
  at::Tensor grad_input, go, ix;
  bool done = false;
};

inline UnpoolBackward unpool_backward_setup(const char* op, const at::Tensor& grad_output,
                                            const at::Tensor& indices,
                                            c10::IntArrayRef output_size, bool channels_last) {
  check_same_device(op, indices, "grad_output", grad_output);
  TORCH_CHECK(indices.scalar_type() == at::kLong, op,
              ": indices must be an int64 tensor, got indices of dtype ", indices.scalar_type());
  UnpoolBackward b;
  b.u = make_unpool(op, indices.sizes(), output_size, channels_last);
  const Unpool& u = b.u;
  TORCH_CHECK(grad_output.sizes() == c10::IntArrayRef(u.out_shape), op,
              ": grad_output has shape ", list_str(grad_output.sizes()), ", expected ",
              list_str(u.out_shape));
  TORCH_CHECK_NOT_IMPLEMENTED(unpool_float_type(grad_output.scalar_type()), op,
                              ": grad_output must be a floating point tensor, got ",
                              grad_output.scalar_type());
  const auto mf = u.memory_format();
  b.grad_input = new_output(u.in_shape, grad_output.options().memory_format(mf));
  if (u.in_numel() == 0) {
    b.done = true;
  } else if (u.out_plane == 0) {
    b.grad_input.zero_();
    b.done = true;
  } else {
    b.go = grad_output.contiguous(mf);
    b.ix = indices.contiguous(mf);
  }
  return b;
}

// The error for logical input element pos, whose index `value` is outside
// [0, out_plane).
[[noreturn]] inline void bad_index(const char* op, const Unpool& u, int64_t pos, int64_t value) {
  // torch's sentence first, poolext's detail after it
  TORCH_CHECK(false, "Found an invalid max index: ", num(value), " (output volumes are of size ",
              u.out_size_str(), ") (", op, ": at indices", u.in_position(pos),
              "; an index must be in [0, ", num(u.out_plane), "))");
}

}  // namespace poolext
