// Max pooling on CPU: forward (values, compact argmax, optional int64
// indices), backward (gather from the compact argmax) and the gather at the
// argmax that double backward needs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include "../core/problem.h"
#include "kernels.h"

namespace poolext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> max_pool_cpu(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool channels_last,
    bool with_argmax, bool with_indices) {
  const char* op = "poolext.max_pool";
  Problem pb = make_problem(op, self.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  TORCH_CHECK_NOT_IMPLEMENTED(
      self.scalar_type() != at::kBool && !self.is_complex(), op,
      ": input dtype ", self.scalar_type(), " is not supported");
  const auto mf = pb.memory_format();
  const at::Tensor x = self.contiguous(mf);
  at::Tensor out = new_output(pb.out_shape, self.options().memory_format(mf));
  const auto am_type = argmax_dtype(pb.g.kernel_volume());
  at::Tensor argmax = with_argmax
                          ? new_output(pb.out_shape, self.options().dtype(am_type).memory_format(mf))
                          : none_like(self, am_type);
  at::Tensor indices = with_indices
                           ? new_output(pb.out_shape, self.options().dtype(at::kLong).memory_format(mf))
                           : none_like(self, at::kLong);
  if (pb.out_numel() == 0) return {out, argmax, indices};
  // torch's plain 1d max pooling (no indices, no grad) returns the winning
  // element itself, so a NaN keeps its bits; every other path rounds the
  // float result, which makes any half-type NaN the canonical one.
  const bool keep_nan_bits = pb.rank == 1 && !with_argmax && !with_indices;
  POOLEXT_CPU_KERNEL(max_pool_fwd, x, out, argmax, indices, pb.g, channels_last, with_argmax,
                     with_indices, keep_nan_bits);
  return {out, argmax, indices};
}

at::Tensor max_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax,
                                 c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                 at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  const char* op = "poolext.max_pool_backward";
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  Problem pb = make_problem(op, sizes, kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  check_grad_output(op, pb, grad_output);
  check_argmax(op, pb, argmax);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = new_output(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  const at::Tensor amc = argmax.contiguous(mf);
  POOLEXT_CPU_KERNEL(max_pool_bwd, go, amc, grad_input, pb.g, channels_last);
  return grad_input;
}

// out[o] = source[the input element that won window o] (0 for an empty
// window); source has the input's shape, out the output's.  The adjoint of
// max_pool_backward.
at::Tensor max_pool_gather_cpu(const at::Tensor& source, const at::Tensor& argmax,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                               bool channels_last) {
  const char* op = "poolext.max_pool_gather";
  Problem pb = make_problem(op, source.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  check_argmax(op, pb, argmax);
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(source.scalar_type()), op,
                              ": source must be a floating point tensor, got ", source.scalar_type());
  const auto mf = pb.memory_format();
  at::Tensor out = new_output(pb.out_shape, source.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor src = source.contiguous(mf);
  const at::Tensor amc = argmax.contiguous(mf);
  POOLEXT_CPU_KERNEL(max_pool_gather, src, amc, out, pb.g, channels_last);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("max_pool", &max_pool_cpu);
  m.impl("max_pool_backward", &max_pool_backward_cpu);
  m.impl("max_pool_gather", &max_pool_gather_cpu);
}

}  // namespace cpu
}  // namespace poolext
