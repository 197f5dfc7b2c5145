// The CUDA ops' host code (csrc/cuda/impl.h) and element functors
// (csrc/cuda/elements.h), run on the host: each functor is called serially
// for every element instead of in a kernel.  Registered as
// torch.ops.poolext_emulated.* with the signatures of torch.ops.poolext.*, so
// tests/test_cuda_emulated.py can compare them with the CPU kernels on
// machines without a GPU.  set_index32(bool) picks the flat index width.
#include <torch/library.h>

#include <random>

#include "core/lp_pool.h"
#include "cuda/impl.h"
#include "cuda/unpool.h"

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

at::Tensor max_unpool(const at::Tensor& self, const at::Tensor& indices,
                      c10::SymIntArrayRef output_size, bool channels_last) {
  return poolext::cuda::max_unpool_impl(HostRunner(), self, indices, output_size, channels_last);
}

at::Tensor max_unpool_backward(const at::Tensor& grad_output, const at::Tensor& indices,
                               c10::SymIntArrayRef output_size, bool channels_last) {
  return poolext::cuda::max_unpool_backward_impl(HostRunner(), grad_output, indices, output_size,
                                                 channels_last);
}

// Number of (n, d) pairs, edge cases and `count` random ones, where FastDiv
// (the int32 fast path's divider) differs from integer division.
int64_t fastdiv_mismatches(int64_t seed, int64_t count) {
  constexpr int64_t kMaxN = std::numeric_limits<int32_t>::max();
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  int64_t bad = 0;
  auto check = [&](int64_t d, int64_t n) {
    if (n < 0 || n > kMaxN) return;
    const poolext::cuda::FastDiv f(d);
    if (f.div(static_cast<int32_t>(n)) != n / d) ++bad;
  };
  std::vector<int64_t> divisors = {1, 2, 3, 5, 6, 7, 9, 25, 100, 641, 65535, 65536, 65537,
                                   (1 << 30) - 1, 1 << 30, (int64_t{1} << 31) - 1};
  for (int b = 2; b < 31; ++b) {
    for (int64_t o : {-1, 0, 1}) divisors.push_back((int64_t{1} << b) + o);
  }
  for (int64_t d : divisors) {
    for (int64_t n : {int64_t{0}, int64_t{1}, d - 1, d, d + 1, 2 * d - 1, 2 * d, kMaxN,
                      kMaxN - 1, kMaxN - d, kMaxN / d * d, kMaxN / d * d - 1}) {
      check(d, n);
    }
    for (int i = 0; i < 1000; ++i) check(d, static_cast<int64_t>(rng() % (kMaxN + 1)));
  }
  for (int64_t i = 0; i < count; ++i) {
    const int64_t d = 1 + static_cast<int64_t>(rng() % (int64_t{1} << (1 + rng() % 31)) % kMaxN);
    check(d, static_cast<int64_t>(rng() % (kMaxN + 1)));
  }
  return bad;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> lp_pool(const at::Tensor& self, double norm_type,
                                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                           bool ceil_mode, bool channels_last, bool with_coef) {
  return poolext::lp_pool_impl(poolext::ElementLaunch<HostRunner>{HostRunner()}, self, norm_type,
                               kernel_size, stride, ceil_mode, channels_last, with_coef);
}

at::Tensor lp_pool_backward(const at::Tensor& grad_output, const at::Tensor& self,
                            const at::Tensor& coef, double norm_type, at::IntArrayRef kernel_size,
                            at::IntArrayRef stride, bool ceil_mode, bool channels_last) {
  return poolext::lp_pool_backward_impl(poolext::ElementLaunch<HostRunner>{HostRunner()},
                                        grad_output, self, coef, norm_type, kernel_size, stride,
                                        ceil_mode, channels_last);
}

TORCH_LIBRARY(poolext_emulated, m) {
  m.def("fastdiv_mismatches", &fastdiv_mismatches);
  m.def("set_index32", &set_index32);
  m.def("max_pool", &max_pool);
  m.def("max_pool_backward", &max_pool_backward);
  m.def("max_pool_gather", &max_pool_gather);
  m.def("avg_pool", &avg_pool);
  m.def("avg_pool_backward", &avg_pool_backward);
  m.def("max_unpool(Tensor self, Tensor indices, SymInt[] output_size, bool channels_last) -> Tensor",
        &max_unpool);
  m.def("max_unpool_backward(Tensor grad_output, Tensor indices, SymInt[] output_size, "
        "bool channels_last) -> Tensor",
        &max_unpool_backward);
  m.def(
      "lp_pool(Tensor self, float norm_type, int[] kernel_size, int[] stride, bool ceil_mode, "
      "bool channels_last, bool with_coef) -> (Tensor, Tensor)",
      &lp_pool);
  m.def(
      "lp_pool_backward(Tensor grad_output, Tensor self, Tensor coef, float norm_type, "
      "int[] kernel_size, int[] stride, bool ceil_mode, bool channels_last) -> Tensor",
      &lp_pool_backward);
}
