// The CUDA ops' host code (csrc/cuda/impl.h) and element functors
// (csrc/cuda/elements.h), run on the host: each functor is called serially
// for every element instead of in a kernel.  Registered as
// torch.ops.poolext_emulated.* with the signatures of torch.ops.poolext.*, so
// tests/test_cuda_emulated.py can compare them with the CPU kernels on
// machines without a GPU.  set_index32(bool) picks the flat index width.
#include <torch/library.h>

#include "cuda/impl.h"

namespace {

bool g_index32 = true;

struct HostRunner {
  bool fits_int32(int64_t max_numel) const {
    return g_index32 && max_numel <= std::numeric_limits<int32_t>::max();
  }
  template <typename Op>
  void operator()(const Op& op, int64_t n) const {
    using index_t = typename Op::index_type;
    for (int64_t i = 0; i < n; ++i) op(static_cast<index_t>(i));
  }
};

void set_index32(bool on) { g_index32 = on; }

std::tuple<at::Tensor, at::Tensor, at::Tensor> max_pool(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool channels_last,
    bool with_argmax, bool with_indices) {
  return poolext::cuda::max_pool_impl(HostRunner(), self, kernel_size, stride, padding, dilation,
                                      ceil_mode, channels_last, with_argmax, with_indices);
}

at::Tensor max_pool_backward(const at::Tensor& grad_output, const at::Tensor& argmax,
                             c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                             at::IntArrayRef stride, at::IntArrayRef padding,
                             at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  return poolext::cuda::max_pool_backward_impl(HostRunner(), grad_output, argmax, input_size,
                                               kernel_size, stride, padding, dilation, ceil_mode,
                                               channels_last);
}

at::Tensor max_pool_gather(const at::Tensor& source, const at::Tensor& argmax,
                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                           bool channels_last) {
  return poolext::cuda::max_pool_gather_impl(HostRunner(), source, argmax, kernel_size, stride,
                                             padding, dilation, ceil_mode, channels_last);
}

at::Tensor avg_pool(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                    at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                    std::optional<int64_t> divisor_override, bool channels_last) {
  return poolext::cuda::avg_pool_impl(HostRunner(), self, kernel_size, stride, padding, ceil_mode,
                                      count_include_pad, divisor_override, channels_last);
}

at::Tensor avg_pool_backward(const at::Tensor& grad_output, c10::SymIntArrayRef input_size,
                             at::IntArrayRef kernel_size, at::IntArrayRef stride,
                             at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                             std::optional<int64_t> divisor_override, bool channels_last) {
  return poolext::cuda::avg_pool_backward_impl(HostRunner(), grad_output, input_size, kernel_size,
                                               stride, padding, ceil_mode, count_include_pad,
                                               divisor_override, channels_last);
}

}  // namespace

TORCH_LIBRARY(poolext_emulated, m) {
  m.def("set_index32", &set_index32);
  m.def("max_pool", &max_pool);
  m.def("max_pool_backward", &max_pool_backward);
  m.def("max_pool_gather", &max_pool_gather);
  m.def("avg_pool", &avg_pool);
  m.def("avg_pool_backward", &avg_pool_backward);
}
