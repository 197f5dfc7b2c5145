// Host side of the adaptive pooling ops, for both devices: argument checks,
// allocation and dtype/layout dispatch.  Runner runs an element functor of
// adaptive.h over [0, n) (see run.h for the interface): the CPU op
// passes a parallel_for loop, the CUDA op a kernel launch.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/SymIntArrayRef.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "adaptive.h"
#include "problem.h"
#include "run.h"

namespace poolext {

struct AdaptiveProblem {
  AdaptiveGeometry g;
  int rank = 0;
  bool channels_last = false;
  std::vector<int64_t> out_shape;

  at::MemoryFormat memory_format() const {
    return channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  }
  int64_t in_numel() const { return g.N * g.C * g.in_plane(); }
  int64_t out_numel() const { return g.N * g.C * g.out_plane(); }
};

inline AdaptiveProblem make_adaptive_problem(const char* op, c10::IntArrayRef sizes,
                                             c10::IntArrayRef output_size, bool channels_last) {
  const int64_t r = static_cast<int64_t>(output_size.size());
  TORCH_CHECK(r >= 1 && r <= 3, op, ": output_size must have 1, 2 or 3 entries, got output_size=",
              list_str(output_size));
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(ndim == r + 1 || ndim == r + 2, op, ": expected a ", num(r + 1),
              "D (unbatched) or ", num(r + 2), "D (batched) input, got input of shape ",
              list_str(sizes));
  // torch's rule and words: every dim but the first non-zero, except that adaptive avg
  // pooling in 1d/2d only needs the spatial dims (1d is checked as 2d, over an unsqueezed view)
  const bool is_max = std::string(op).find("max") != std::string::npos;
  for (int64_t i = (!is_max && r < 3) ? ndim - r : 1; i < ndim; ++i) {
    if (sizes[i] > 0) continue;
    std::vector<int64_t> shape(sizes.begin(), sizes.end());
    int64_t dim = i;
    std::string name = std::string("adaptive_") + (is_max ? "max" : "avg") + "_pool" + num(r) + "d";
    if (!is_max && r == 1) {
      shape.insert(shape.end() - 1, 1);
      name = "adaptive_avg_pool2d";
      dim = i + 1;
    }
    TORCH_CHECK(false, name, "(): Expected input to have non-zero size for non-batch dimensions, "
                "but input has sizes ", bracket_str(shape), " with dimension ", num(dim),
                " being empty (", op, ": the non-batch dims of the input must be non-zero, got "
                "input of shape ", list_str(sizes), ")");
  }
  TORCH_CHECK(!channels_last || (r == 2 && ndim == 4), op,
              ": channels_last needs a batched 2d input");
  AdaptiveProblem pb;
  pb.rank = static_cast<int>(r);
  pb.channels_last = channels_last;
  pb.g.N = ndim == r + 2 ? sizes[0] : 1;
  pb.g.C = sizes[ndim - r - 1];
  pb.out_shape.assign(sizes.begin(), sizes.end());
  constexpr int64_t kLimit = int64_t{1} << 62;
  for (int64_t a = 0; a < r; ++a) {
    const int64_t in = sizes[ndim - r + a], out = output_size[a];
    TORCH_CHECK(out >= 0, op, ": output_size must be non-negative, got output_size=",
                list_str(output_size));
    // start/end/cover multiply an input and an output coordinate.
    TORCH_CHECK(out + 1 <= kLimit / (in + 1), op, ": output_size=", list_str(output_size),
                " is too large for input of shape ", list_str(sizes));
    pb.g.dim[3 - r + a] = AdaptiveDim{in, out};
    pb.out_shape[ndim - r + a] = out;
  }
  return pb;
}

// The compact argmax's dtype for a problem: by its widest window.
inline at::ScalarType adaptive_argmax_dtype(const char* op, const AdaptiveProblem& pb) {
  if (pb.out_numel() == 0) return at::kByte;
  const int64_t window = pb.g.max_window();
  TORCH_CHECK(window <= std::numeric_limits<int32_t>::max(), op,
              ": windows of more than 2^31-1 elements are not supported for training or indices "
              "(output_size too small for the input)");
  return argmax_dtype(window);
}

// torch's words when no adaptive kernel takes the dtype: "adaptive_max_pool2d" not
// implemented for 'Long' (1d runs as 2d; the 3d kernels carry the device).
inline void check_floating(const char* op, const at::Tensor& t, int64_t r) {
  if (at::isFloatingType(t.scalar_type())) return;
  const bool is_max = std::string(op).find("max") != std::string::npos;
  std::string kernel = std::string("adaptive_") + (is_max ? "max" : "avg") + "_pool" +
                       (r < 3 ? "2d" : std::string("3d_") + (t.is_cuda() ? "cuda" : "cpu"));
  TORCH_CHECK_NOT_IMPLEMENTED(false, "\"", kernel, "\" not implemented for '",
                              c10::toString(t.scalar_type()), "' (", op, ": input dtype ",
                              c10::toString(t.scalar_type()),
                              " is not supported (floating point types only))");
}

template <typename Runner>
std::tuple<at::Tensor, at::Tensor, at::Tensor> adaptive_max_pool_impl(
    const Runner& run, const at::Tensor& self, c10::IntArrayRef output_size, bool channels_last,
    bool with_argmax, bool with_indices) {
  const char* op = "poolext.adaptive_max_pool";
  const AdaptiveProblem pb = make_adaptive_problem(op, self.sizes(), output_size, channels_last);
  check_floating(op, self, static_cast<int64_t>(output_size.size()));
  const auto mf = pb.memory_format();
  const at::Tensor x = self.contiguous(mf);
  at::Tensor out = new_output(pb.out_shape, self.options().memory_format(mf));
  const auto am_type = with_argmax ? adaptive_argmax_dtype(op, pb) : at::kByte;
  at::Tensor argmax = with_argmax
                          ? new_output(pb.out_shape, self.options().dtype(am_type).memory_format(mf))
                          : none_like(self, am_type);
  at::Tensor indices =
      with_indices ? new_output(pb.out_shape, self.options().dtype(at::kLong).memory_format(mf))
                   : none_like(self, at::kLong);
  if (pb.out_numel() == 0) return {out, argmax, indices};
  const AdaptiveGeometry g = pb.g;
  const int width = with_argmax ? static_cast<int>(c10::elementSize(am_type)) : 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.adaptive", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    void* am = with_argmax ? argmax.mutable_data_ptr() : nullptr;
    int64_t* idx = with_indices ? indices.mutable_data_ptr<int64_t>() : nullptr;
    run_elements(run, channels_last, pb.out_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return adaptive::MaxForward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, in, o, am, width, idx};
                 });
  });
  return {out, argmax, indices};
}

inline void check_adaptive_argmax(const char* op, const AdaptiveProblem& pb,
                                  const at::Tensor& argmax) {
  const auto expected = adaptive_argmax_dtype(op, pb);
  TORCH_CHECK(argmax.scalar_type() == expected, op, ": argmax has dtype ", argmax.scalar_type(),
              ", expected ", expected);
  TORCH_CHECK(argmax.sizes() == c10::IntArrayRef(pb.out_shape), op, ": argmax has shape ",
              list_str(argmax.sizes()), ", expected ", list_str(pb.out_shape));
}

inline void check_adaptive_grad(const char* op, const AdaptiveProblem& pb,
                                const at::Tensor& grad_output) {
  TORCH_CHECK(grad_output.sizes() == c10::IntArrayRef(pb.out_shape), op,
              ": grad_output has shape ", list_str(grad_output.sizes()), ", expected ",
              list_str(pb.out_shape));
  TORCH_CHECK(at::isFloatingType(grad_output.scalar_type()), op,
              ": grad_output must be a floating point tensor, got ", grad_output.scalar_type());
}

template <typename Runner>
at::Tensor adaptive_max_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                           const at::Tensor& argmax,
                                           c10::SymIntArrayRef input_size,
                                           c10::IntArrayRef output_size, bool channels_last) {
  const char* op = "poolext.adaptive_max_pool_backward";
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  const AdaptiveProblem pb = make_adaptive_problem(op, sizes, output_size, channels_last);
  check_adaptive_grad(op, pb, grad_output);
  check_adaptive_argmax(op, pb, argmax);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = new_output(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  if (pb.out_numel() == 0) return grad_input.zero_();
  const at::Tensor go = grad_output.contiguous(mf);
  const at::Tensor am = argmax.contiguous(mf);
  const AdaptiveGeometry g = pb.g;
  const int width = static_cast<int>(c10::elementSize(am.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.adaptive", [&] {
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    const void* amp = am.const_data_ptr();
    scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
    run_elements(run, channels_last, pb.in_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return adaptive::MaxBackward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, gop, amp, width, gi};
                 });
  });
  return grad_input;
}

template <typename Runner>
at::Tensor adaptive_max_pool_gather_impl(const Runner& run, const at::Tensor& source,
                                         const at::Tensor& argmax, c10::IntArrayRef output_size,
                                         bool channels_last) {
  const char* op = "poolext.adaptive_max_pool_gather";
  const AdaptiveProblem pb = make_adaptive_problem(op, source.sizes(), output_size, channels_last);
  check_floating(op, source, static_cast<int64_t>(output_size.size()));
  check_adaptive_argmax(op, pb, argmax);
  const auto mf = pb.memory_format();
  at::Tensor out = new_output(pb.out_shape, source.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor src = source.contiguous(mf);
  const at::Tensor am = argmax.contiguous(mf);
  const AdaptiveGeometry g = pb.g;
  const int width = static_cast<int>(c10::elementSize(am.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "poolext.adaptive", [&] {
    const scalar_t* s = src.const_data_ptr<scalar_t>();
    const void* amp = am.const_data_ptr();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    run_elements(run, channels_last, pb.out_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return adaptive::MaxGather<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, s, amp, width, o};
                 });
  });
  return out;
}

template <typename Runner>
at::Tensor adaptive_avg_pool_impl(const Runner& run, const at::Tensor& self,
                                  c10::IntArrayRef output_size, bool channels_last) {
  const char* op = "poolext.adaptive_avg_pool";
  const AdaptiveProblem pb = make_adaptive_problem(op, self.sizes(), output_size, channels_last);
  check_floating(op, self, static_cast<int64_t>(output_size.size()));
  const auto mf = pb.memory_format();
  at::Tensor out = new_output(pb.out_shape, self.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor x = self.contiguous(mf);
  const AdaptiveGeometry g = pb.g;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.adaptive", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    run_elements(run, channels_last, pb.out_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return adaptive::AvgForward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, in, o};
                 });
  });
  return out;
}

template <typename Runner>
at::Tensor adaptive_avg_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                           c10::SymIntArrayRef input_size,
                                           c10::IntArrayRef output_size, bool channels_last) {
  const char* op = "poolext.adaptive_avg_pool_backward";
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  const AdaptiveProblem pb = make_adaptive_problem(op, sizes, output_size, channels_last);
  check_adaptive_grad(op, pb, grad_output);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = new_output(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  if (pb.out_numel() == 0) return grad_input.zero_();
  const at::Tensor go = grad_output.contiguous(mf);
  const AdaptiveGeometry g = pb.g;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.adaptive", [&] {
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
    run_elements(run, channels_last, pb.in_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return adaptive::AvgBackward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, gop, gi};
                 });
  });
  return grad_input;
}

}  // namespace poolext
