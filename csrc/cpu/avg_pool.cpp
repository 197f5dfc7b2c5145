// Average pooling on CPU: forward and backward (gather).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include "../core/problem.h"
#include "kernels.h"

namespace poolext {
namespace cpu {
namespace {

at::Tensor avg_pool_cpu(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                        at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                        std::optional<int64_t> divisor_override, bool channels_last) {
  const char* op = "poolext.avg_pool";
  check_divisor(op, divisor_override);
  Problem pb = make_problem(op, self.sizes(), kernel_size, stride, padding, {}, ceil_mode,
                            channels_last);
  const auto dt = self.scalar_type();
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(dt) || dt == at::kLong, op, ": input dtype ", dt,
                              " is not supported (floating point types and int64 are)");
  const auto mf = pb.memory_format();
  at::Tensor out = new_output(pb.out_shape, self.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor x = self.contiguous(mf);
  POOLEXT_CPU_KERNEL(avg_pool_fwd, x, out, pb.g, channels_last, count_include_pad,
                     divisor_override.value_or(0));
  return out;
}

at::Tensor avg_pool_backward_cpu(const at::Tensor& grad_output, c10::SymIntArrayRef input_size,
                                 at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                 at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                                 std::optional<int64_t> divisor_override, bool channels_last) {
  const char* op = "poolext.avg_pool_backward";
  check_divisor(op, divisor_override);
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  Problem pb = make_problem(op, sizes, kernel_size, stride, padding, {}, ceil_mode, channels_last);
  check_grad_output(op, pb, grad_output);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = new_output(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  POOLEXT_CPU_KERNEL(avg_pool_bwd, go, grad_input, pb.g, channels_last, count_include_pad,
                     divisor_override.value_or(0));
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("avg_pool", &avg_pool_cpu);
  m.impl("avg_pool_backward", &avg_pool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
