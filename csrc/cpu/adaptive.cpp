// Adaptive pooling on CPU: the ops of core/adaptive_ops.h (the ones the CUDA
// ops run too), with their element functors run in parallel over output
// (forward) or input (backward) elements.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../core/adaptive_ops.h"
#include "runner.h"

namespace poolext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> adaptive_max_pool_cpu(
    const at::Tensor& self, at::IntArrayRef output_size, bool channels_last, bool with_argmax,
    bool with_indices) {
  return adaptive_max_pool_impl(ParallelRunner(), self, output_size, channels_last, with_argmax,
                                with_indices);
}

at::Tensor adaptive_max_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax,
                                          c10::SymIntArrayRef input_size,
                                          at::IntArrayRef output_size, bool channels_last) {
  return adaptive_max_pool_backward_impl(ParallelRunner(), grad_output, argmax, input_size,
                                         output_size, channels_last);
}

at::Tensor adaptive_max_pool_gather_cpu(const at::Tensor& source, const at::Tensor& argmax,
                                        at::IntArrayRef output_size, bool channels_last) {
  return adaptive_max_pool_gather_impl(ParallelRunner(), source, argmax, output_size,
                                       channels_last);
}

at::Tensor adaptive_avg_pool_cpu(const at::Tensor& self, at::IntArrayRef output_size,
                                 bool channels_last) {
  return adaptive_avg_pool_impl(ParallelRunner(), self, output_size, channels_last);
}

at::Tensor adaptive_avg_pool_backward_cpu(const at::Tensor& grad_output,
                                          c10::SymIntArrayRef input_size,
                                          at::IntArrayRef output_size, bool channels_last) {
  return adaptive_avg_pool_backward_impl(ParallelRunner(), grad_output, input_size, output_size,
                                         channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("adaptive_max_pool", &adaptive_max_pool_cpu);
  m.impl("adaptive_max_pool_backward", &adaptive_max_pool_backward_cpu);
  m.impl("adaptive_max_pool_gather", &adaptive_max_pool_gather_cpu);
  m.impl("adaptive_avg_pool", &adaptive_avg_pool_cpu);
  m.impl("adaptive_avg_pool_backward", &adaptive_avg_pool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
