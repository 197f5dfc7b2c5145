// Adaptive pooling on CUDA: the ops of core/adaptive_ops.h (the ones the
// CPU op runs too), one thread per output (forward) or input (backward)
// element.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../core/adaptive_ops.h"
#include "common.cuh"

namespace poolext {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> adaptive_max_pool_cuda(
    const at::Tensor& self, at::IntArrayRef output_size, bool channels_last, bool with_argmax,
    bool with_indices) {
  const c10::cuda::CUDAGuard guard(self.device());
  return adaptive_max_pool_impl(CudaRunner(), self, output_size, channels_last, with_argmax,
                                with_indices);
}

at::Tensor adaptive_max_pool_backward_cuda(const at::Tensor& grad_output,
                                           const at::Tensor& argmax,
                                           c10::SymIntArrayRef input_size,
                                           at::IntArrayRef output_size, bool channels_last) {
  check_device("poolext.adaptive_max_pool_backward", "argmax", argmax, "grad_output",
               grad_output);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return adaptive_max_pool_backward_impl(CudaRunner(), grad_output, argmax, input_size,
                                         output_size, channels_last);
}

at::Tensor adaptive_max_pool_gather_cuda(const at::Tensor& source, const at::Tensor& argmax,
                                         at::IntArrayRef output_size, bool channels_last) {
  check_device("poolext.adaptive_max_pool_gather", "argmax", argmax, "source", source);
  const c10::cuda::CUDAGuard guard(source.device());
  return adaptive_max_pool_gather_impl(CudaRunner(), source, argmax, output_size,
                                       channels_last);
}

at::Tensor adaptive_avg_pool_cuda(const at::Tensor& self, at::IntArrayRef output_size,
                                  bool channels_last) {
  const c10::cuda::CUDAGuard guard(self.device());
  return adaptive_avg_pool_impl(CudaRunner(), self, output_size, channels_last);
}

at::Tensor adaptive_avg_pool_backward_cuda(const at::Tensor& grad_output,
                                           c10::SymIntArrayRef input_size,
                                           at::IntArrayRef output_size, bool channels_last) {
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return adaptive_avg_pool_backward_impl(CudaRunner(), grad_output, input_size, output_size,
                                         channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CUDA, m) {
  m.impl("adaptive_max_pool", &adaptive_max_pool_cuda);
  m.impl("adaptive_max_pool_backward", &adaptive_max_pool_backward_cuda);
  m.impl("adaptive_max_pool_gather", &adaptive_max_pool_gather_cuda);
  m.impl("adaptive_avg_pool", &adaptive_avg_pool_cuda);
  m.impl("adaptive_avg_pool_backward", &adaptive_avg_pool_backward_cuda);
}

}  // namespace cuda
}  // namespace poolext
