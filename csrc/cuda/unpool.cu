// Max unpooling on CUDA: forward (scatter into zeros) and backward (gather).
// The work is in unpool.h.
#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common.cuh"
#include "unpool.h"

namespace poolext {
namespace cuda {
namespace {

at::Tensor max_unpool_cuda(const at::Tensor& self, const at::Tensor& indices,
                           c10::SymIntArrayRef output_size, bool channels_last) {
  check_device("poolext.max_unpool", "indices", indices, "input", self);
  // Threads race on duplicated indices, as in torch, which raises here too.
  at::globalContext().alertNotDeterministic("poolext.max_unpool (CUDA)");
  const c10::cuda::CUDAGuard guard(self.device());
  return max_unpool_impl(CudaRunner(), self, indices, output_size, channels_last);
}

at::Tensor max_unpool_backward_cuda(const at::Tensor& grad_output, const at::Tensor& indices,
                                    c10::SymIntArrayRef output_size, bool channels_last) {
  check_device("poolext.max_unpool_backward", "indices", indices, "grad_output", grad_output);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  return max_unpool_backward_impl(CudaRunner(), grad_output, indices, output_size,
                                  channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CUDA, m) {
  m.impl("max_unpool", &max_unpool_cuda);
  m.impl("max_unpool_backward", &max_unpool_backward_cuda);
}

}  // namespace cuda
}  // namespace poolext
