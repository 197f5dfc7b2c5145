// Average pooling on CUDA: forward and backward (gather): the shared
// prologue (core/prologue.h), then the dispatch of impl.h to the functors of
// elements.h.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common.cuh"
#include "impl.h"

namespace poolext {
namespace cuda {
namespace {

at::Tensor avg_pool_cuda(const at::Tensor& self, at::IntArrayRef kernel_size,
                         at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                         bool count_include_pad, std::optional<int64_t> divisor_override,
                         bool channels_last) {
  const c10::cuda::CUDAGuard guard(self.device());
  return avg_pool_impl(CudaRunner(), self, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override, channels_last);
}

at::Tensor avg_pool_backward_cuda(const at::Tensor& grad_output, c10::SymIntArrayRef input_size,
                                  at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                  at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                                  std::optional<int64_t> divisor_override, bool channels_last) {
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return avg_pool_backward_impl(CudaRunner(), grad_output, input_size, kernel_size, stride,
                                padding, ceil_mode, count_include_pad, divisor_override,
                                channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CUDA, m) {
  m.impl("avg_pool", &avg_pool_cuda);
  m.impl("avg_pool_backward", &avg_pool_backward_cuda);
}

}  // namespace cuda
}  // namespace poolext
