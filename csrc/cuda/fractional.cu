// Fractional max pooling on CUDA: the ops of core/fractional_ops.h (the ones
// the CPU ops run too), one thread per output (forward, gather) or input
// (backward) element, with torch's CUDA interval arithmetic (the accumulate
// type) and every window start clamped into the input.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../core/fractional_ops.h"
#include "common.cuh"

namespace poolext {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> fractional_max_pool_cuda(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
    const at::Tensor& samples, bool channels_last, bool with_argmax, bool with_indices) {
  check_device("poolext.fractional_max_pool", "samples", samples, "self", self);
  const c10::cuda::CUDAGuard guard(self.device());
  return fractional_max_pool_impl<true>(CudaRunner(), self, kernel_size, output_size, samples,
                                        channels_last, with_argmax, with_indices);
}

at::Tensor fractional_max_pool_backward_cuda(const at::Tensor& grad_output,
                                             const at::Tensor& argmax, const at::Tensor& samples,
                                             c10::SymIntArrayRef input_size,
                                             at::IntArrayRef kernel_size, bool channels_last) {
  const char* op = "poolext.fractional_max_pool_backward";
  check_device(op, "argmax", argmax, "grad_output", grad_output);
  check_device(op, "samples", samples, "grad_output", grad_output);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return fractional_max_pool_backward_impl<true>(CudaRunner(), grad_output, argmax, samples,
                                                 input_size, kernel_size, channels_last);
}

at::Tensor fractional_max_pool_gather_cuda(const at::Tensor& source, const at::Tensor& argmax,
                                           const at::Tensor& samples, at::IntArrayRef kernel_size,
                                           at::IntArrayRef output_size, bool channels_last) {
  const char* op = "poolext.fractional_max_pool_gather";
  check_device(op, "argmax", argmax, "source", source);
  check_device(op, "samples", samples, "source", source);
  const c10::cuda::CUDAGuard guard(source.device());
  return fractional_max_pool_gather_impl<true>(CudaRunner(), source, argmax, samples, kernel_size,
                                               output_size, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CUDA, m) {
  m.impl("fractional_max_pool", &fractional_max_pool_cuda);
  m.impl("fractional_max_pool_backward", &fractional_max_pool_backward_cuda);
  m.impl("fractional_max_pool_gather", &fractional_max_pool_gather_cuda);
}

}  // namespace cuda
}  // namespace poolext
