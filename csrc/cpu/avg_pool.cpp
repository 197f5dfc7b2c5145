// Average pooling on CPU: forward and backward (gather).  Checks and
// allocation are the shared prologues (core/prologue.h); the kernels are the
// engine's (kernels.h).
#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include "../core/prologue.h"
#include "kernels.h"

namespace poolext {
namespace cpu {
namespace {

at::Tensor avg_pool_cpu(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                        at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                        std::optional<int64_t> divisor_override, bool channels_last) {
  // int64 inputs are averaged on the CPU, as torch's CPU kernel does.
  AvgPoolSetup s = avg_pool_prologue(self, kernel_size, stride, padding, ceil_mode,
                                     divisor_override, channels_last, /*int64_ok=*/true);
  if (!s.done) {
    POOLEXT_CPU_KERNEL(avg_pool_fwd, s.x, s.out, s.pb.g, channels_last, count_include_pad,
                       s.divisor_override);
  }
  return s.out;
}

at::Tensor avg_pool_backward_cpu(const at::Tensor& grad_output, c10::SymIntArrayRef input_size,
                                 at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                 at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                                 std::optional<int64_t> divisor_override, bool channels_last) {
  AvgPoolBackwardSetup s = avg_pool_backward_prologue(
      grad_output, C10_AS_INTARRAYREF_SLOW(input_size), kernel_size, stride, padding, ceil_mode,
      divisor_override, channels_last);
  if (!s.done) {
    POOLEXT_CPU_KERNEL(avg_pool_bwd, s.go, s.grad_input, s.pb.g, channels_last,
                       count_include_pad, s.divisor_override);
  }
  return s.grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("avg_pool", &avg_pool_cpu);
  m.impl("avg_pool_backward", &avg_pool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
