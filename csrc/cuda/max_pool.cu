// Max pooling on CUDA: forward (values, compact argmax, optional int64
// indices), backward (gather from the compact argmax) and the gather at the
// argmax that double backward needs: the shared prologue (core/prologue.h),
// then the dispatch of impl.h to the functors of elements.h.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common.cuh"
#include "impl.h"

namespace poolext {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> max_pool_cuda(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool channels_last,
    bool with_argmax, bool with_indices) {
  const c10::cuda::CUDAGuard guard(self.device());
  return max_pool_impl(CudaRunner(), self, kernel_size, stride, padding, dilation, ceil_mode,
                       channels_last, with_argmax, with_indices);
}

at::Tensor max_pool_backward_cuda(const at::Tensor& grad_output, const at::Tensor& argmax,
                                  c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                  at::IntArrayRef stride, at::IntArrayRef padding,
                                  at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  check_device("poolext.max_pool_backward", "argmax", argmax, "grad_output", grad_output);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return max_pool_backward_impl(CudaRunner(), grad_output, argmax, input_size, kernel_size,
                                stride, padding, dilation, ceil_mode, channels_last);
}

at::Tensor max_pool_gather_cuda(const at::Tensor& source, const at::Tensor& argmax,
                                at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                bool channels_last) {
  check_device("poolext.max_pool_gather", "argmax", argmax, "source", source);
  const c10::cuda::CUDAGuard guard(source.device());
  return max_pool_gather_impl(CudaRunner(), source, argmax, kernel_size, stride, padding,
                              dilation, ceil_mode, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CUDA, m) {
  m.impl("max_pool", &max_pool_cuda);
  m.impl("max_pool_backward", &max_pool_backward_cuda);
  m.impl("max_pool_gather", &max_pool_gather_cuda);
}

}  // namespace cuda
}  // namespace poolext
