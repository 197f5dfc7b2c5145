// Max pooling on CPU: forward (values, compact argmax, optional int64
// indices), backward (gather from the compact argmax) and the gather at the
// argmax that double backward needs.  Checks and allocation are the shared
// prologues (core/prologue.h); the kernels are the engine's (kernels.h).
#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include "../core/prologue.h"
#include "kernels.h"

namespace poolext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> max_pool_cpu(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool channels_last,
    bool with_argmax, bool with_indices) {
  MaxPoolSetup s = max_pool_prologue(self, kernel_size, stride, padding, dilation, ceil_mode,
                                     channels_last, with_argmax, with_indices);
  if (!s.done) {
    // torch's plain 1d max pooling (no indices, no grad) returns the winning
    // element itself, so a NaN keeps its bits; every other path rounds the
    // float result, which makes any half-type NaN the canonical one.
    const bool keep_nan_bits = s.pb.rank == 1 && !with_argmax && !with_indices;
    POOLEXT_CPU_KERNEL(max_pool_fwd, s.x, s.out, s.argmax, s.indices, s.pb.g, channels_last,
                       with_argmax, with_indices, keep_nan_bits);
  }
  return {s.out, s.argmax, s.indices};
}

at::Tensor max_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax,
                                 c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                 at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  MaxPoolBackwardSetup s = max_pool_backward_prologue(
      grad_output, argmax, C10_AS_INTARRAYREF_SLOW(input_size), kernel_size, stride, padding,
      dilation, ceil_mode, channels_last);
  if (!s.done) {
    POOLEXT_CPU_KERNEL(max_pool_bwd, s.go, s.argmax, s.grad_input, s.pb.g, channels_last);
  }
  return s.grad_input;
}

// out[o] = source[the input element that won window o] (0 for an empty
// window); source has the input's shape, out the output's.  The adjoint of
// max_pool_backward.
at::Tensor max_pool_gather_cpu(const at::Tensor& source, const at::Tensor& argmax,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                               bool channels_last) {
  MaxPoolGatherSetup s = max_pool_gather_prologue(source, argmax, kernel_size, stride, padding,
                                                  dilation, ceil_mode, channels_last);
  if (!s.done) {
    POOLEXT_CPU_KERNEL(max_pool_gather, s.source, s.argmax, s.out, s.pb.g, channels_last);
  }
  return s.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("max_pool", &max_pool_cpu);
  m.impl("max_pool_backward", &max_pool_backward_cpu);
  m.impl("max_pool_gather", &max_pool_gather_cpu);
}

}  // namespace cpu
}  // namespace poolext
