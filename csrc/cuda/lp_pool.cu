// LP pooling on CUDA: the ops of core/lp_pool.h (the ones the CPU ops run
// too), one thread per output (forward) or input (backward) element.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../core/lp_pool.h"
#include "common.cuh"

namespace poolext {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor> lp_pool_cuda(const at::Tensor& self, double norm_type,
                                                at::IntArrayRef kernel_size,
                                                at::IntArrayRef stride, bool ceil_mode,
                                                bool channels_last, bool with_coef) {
  const c10::cuda::CUDAGuard guard(self.device());
  return lp_pool_impl(ElementLaunch<CudaRunner>{CudaRunner()}, self, norm_type, kernel_size, stride, ceil_mode,
                      channels_last, with_coef);
}

at::Tensor lp_pool_backward_cuda(const at::Tensor& grad_output, const at::Tensor& self,
                                 const at::Tensor& coef, double norm_type,
                                 at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                 bool ceil_mode, bool channels_last) {
  check_device("poolext.lp_pool_backward", "self", self, "grad_output", grad_output);
  check_device("poolext.lp_pool_backward", "coef", coef, "grad_output", grad_output);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return lp_pool_backward_impl(ElementLaunch<CudaRunner>{CudaRunner()}, grad_output, self, coef, norm_type, kernel_size,
                               stride, ceil_mode, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CUDA, m) {
  m.impl("lp_pool", &lp_pool_cuda);
  m.impl("lp_pool_backward", &lp_pool_backward_cuda);
}

}  // namespace cuda
}  // namespace poolext
