// Fractional max pooling on CPU: the ops of core/fractional_ops.h (the ones
// the CUDA ops run too), with their element functors run in parallel over
// output (forward, gather) or input (backward) elements, and torch's CPU
// interval arithmetic (the input's own type; windows outside the input
// refused).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../core/fractional_ops.h"
#include "runner.h"

namespace poolext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> fractional_max_pool_cpu(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
    const at::Tensor& samples, bool channels_last, bool with_argmax, bool with_indices) {
  return fractional_max_pool_impl<false>(ParallelRunner(), self, kernel_size, output_size,
                                         samples, channels_last, with_argmax, with_indices);
}

at::Tensor fractional_max_pool_backward_cpu(const at::Tensor& grad_output,
                                            const at::Tensor& argmax, const at::Tensor& samples,
                                            c10::SymIntArrayRef input_size,
                                            at::IntArrayRef kernel_size, bool channels_last) {
  return fractional_max_pool_backward_impl<false>(ParallelRunner(), grad_output, argmax, samples,
                                                  input_size, kernel_size, channels_last);
}

at::Tensor fractional_max_pool_gather_cpu(const at::Tensor& source, const at::Tensor& argmax,
                                          const at::Tensor& samples, at::IntArrayRef kernel_size,
                                          at::IntArrayRef output_size, bool channels_last) {
  return fractional_max_pool_gather_impl<false>(ParallelRunner(), source, argmax, samples,
                                                kernel_size, output_size, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("fractional_max_pool", &fractional_max_pool_cpu);
  m.impl("fractional_max_pool_backward", &fractional_max_pool_backward_cpu);
  m.impl("fractional_max_pool_gather", &fractional_max_pool_gather_cpu);
}

}  // namespace cpu
}  // namespace poolext
