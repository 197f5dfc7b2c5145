// LP pooling on CPU: the ops of core/lp_pool.h (the ones the CUDA ops run
// too), with their element functors run in parallel over output (forward) or
// input (backward) elements.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../core/lp_pool.h"
#include "runner.h"

namespace poolext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> lp_pool_cpu(const at::Tensor& self, double norm_type,
                                               at::IntArrayRef kernel_size,
                                               at::IntArrayRef stride, bool ceil_mode,
                                               bool channels_last, bool with_coef) {
  return lp_pool_impl(ParallelRunner(), self, norm_type, kernel_size, stride, ceil_mode,
                      channels_last, with_coef);
}

at::Tensor lp_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& self,
                                const at::Tensor& coef, double norm_type,
                                at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                bool ceil_mode, bool channels_last) {
  return lp_pool_backward_impl(ParallelRunner(), grad_output, self, coef, norm_type, kernel_size,
                               stride, ceil_mode, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("lp_pool", &lp_pool_cpu);
  m.impl("lp_pool_backward", &lp_pool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
