// Fractional max pooling on CPU: the ops of core/fractional_ops.h (the ones
// the CUDA ops run too), with their element functors run in parallel over
// output (forward, gather) or input (backward) elements, and torch's CPU
// interval arithmetic (the input's own type; windows outside the input
// refused).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../core/fractional_ops.h"
#include "runner.h"

#include <type_traits>
#include <utility>

namespace poolext {
namespace cpu {
namespace {

// ParallelRunner, but a functor with range(i0, i1) (the element functors of
// core/fractional.h) gets each thread's chunk in one call, so that it steps
// coordinates instead of dividing them out for every element.
struct RangeRunner : ParallelRunner {
  template <typename Op, typename = void>
  struct has_range : std::false_type {};
  template <typename Op>
  struct has_range<Op, std::void_t<decltype(std::declval<const Op&>().range(0, 0))>>
      : std::true_type {};

  template <typename Op>
  void operator()(const Op& op, int64_t n) const {
    if constexpr (has_range<Op>::value) {
      at::parallel_for(0, n, 2048, [&](int64_t i0, int64_t i1) { op.range(i0, i1); });
    } else {
      ParallelRunner::operator()(op, n);
    }
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> fractional_max_pool_cpu(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
    const at::Tensor& samples, bool channels_last, bool with_argmax, bool with_indices) {
  return fractional_max_pool_impl<false>(RangeRunner(), self, kernel_size, output_size,
                                         samples, channels_last, with_argmax, with_indices);
}

at::Tensor fractional_max_pool_backward_cpu(const at::Tensor& grad_output,
                                            const at::Tensor& argmax, const at::Tensor& samples,
                                            c10::SymIntArrayRef input_size,
                                            at::IntArrayRef kernel_size, bool channels_last) {
  return fractional_max_pool_backward_impl<false>(RangeRunner(), grad_output, argmax, samples,
                                                  input_size, kernel_size, channels_last);
}

at::Tensor fractional_max_pool_gather_cpu(const at::Tensor& source, const at::Tensor& argmax,
                                          const at::Tensor& samples, at::IntArrayRef kernel_size,
                                          at::IntArrayRef output_size, bool channels_last) {
  return fractional_max_pool_gather_impl<false>(RangeRunner(), source, argmax, samples,
                                                kernel_size, output_size, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("fractional_max_pool", &fractional_max_pool_cpu);
  m.impl("fractional_max_pool_backward", &fractional_max_pool_backward_cpu);
  m.impl("fractional_max_pool_gather", &fractional_max_pool_gather_cpu);
}

}  // namespace cpu
}  // namespace poolext
