// One prologue per fixed-window op, called by the CPU op and the CUDA op
// alike: the checked problem, the outputs allocated in the problem's memory
// format, and the inputs in that format, in the same order on both devices
// (so both refuse the same calls with the same messages).  `done` says that
// the outputs are already the result (an empty problem: no kernel runs, and
// the inputs are not made contiguous).  What follows a prologue is the
// device's own kernel dispatch (cpu/*.cpp, cuda/impl.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <optional>

#include "problem.h"

namespace poolext {

// max_pool: input x, output values, compact argmax and int64 indices (the
// last two empty unless asked for).
struct MaxPoolSetup {
  Problem pb;
  at::Tensor x, out, argmax, indices;
  bool done = false;
};

inline MaxPoolSetup max_pool_prologue(const at::Tensor& self, c10::IntArrayRef kernel_size,
                                      c10::IntArrayRef stride, c10::IntArrayRef padding,
                                      c10::IntArrayRef dilation, bool ceil_mode,
                                      bool channels_last, bool with_argmax, bool with_indices) {
  const char* op = "poolext.max_pool";
  MaxPoolSetup s;
  s.pb = make_problem(op, self.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                      channels_last);
  const Problem& pb = s.pb;
  TORCH_CHECK_NOT_IMPLEMENTED(self.scalar_type() != at::kBool && !self.is_complex(), op,
                              ": input dtype ", self.scalar_type(), " is not supported");
  const auto mf = pb.memory_format();
  s.x = self.contiguous(mf);
  s.out = new_output(pb.out_shape, self.options().memory_format(mf));
  const auto am_type = argmax_dtype(pb.g.kernel_volume());
  s.argmax = with_argmax
                 ? new_output(pb.out_shape, self.options().dtype(am_type).memory_format(mf))
                 : none_like(self, am_type);
  s.indices = with_indices
                  ? new_output(pb.out_shape, self.options().dtype(at::kLong).memory_format(mf))
                  : none_like(self, at::kLong);
  s.done = pb.out_numel() == 0;
  return s;
}

// max_pool_backward: grad_input (uninitialised), grad_output and argmax.
struct MaxPoolBackwardSetup {
  Problem pb;
  at::Tensor grad_input, go, argmax;
  bool done = false;
};

inline MaxPoolBackwardSetup max_pool_backward_prologue(
    const at::Tensor& grad_output, const at::Tensor& argmax, c10::IntArrayRef input_size,
    c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
    c10::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  const char* op = "poolext.max_pool_backward";
  MaxPoolBackwardSetup s;
  s.pb = make_problem(op, input_size, kernel_size, stride, padding, dilation, ceil_mode,
                      channels_last);
  const Problem& pb = s.pb;
  check_grad_output(op, pb, grad_output);
  check_argmax(op, pb, argmax);
  const auto mf = pb.memory_format();
  s.grad_input = new_output(input_size, grad_output.options().memory_format(mf));
  s.done = pb.in_numel() == 0;
  if (s.done) return s;
  s.go = grad_output.contiguous(mf);
  s.argmax = argmax.contiguous(mf);
  return s;
}

// max_pool_gather: out[o] = source[the element that won window o]; source
// has the input's shape, out the output's.
struct MaxPoolGatherSetup {
  Problem pb;
  at::Tensor source, argmax, out;
  bool done = false;
};

inline MaxPoolGatherSetup max_pool_gather_prologue(
    const at::Tensor& source, const at::Tensor& argmax, c10::IntArrayRef kernel_size,
    c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
    bool ceil_mode, bool channels_last) {
  const char* op = "poolext.max_pool_gather";
  MaxPoolGatherSetup s;
  s.pb = make_problem(op, source.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                      channels_last);
  const Problem& pb = s.pb;
  check_argmax(op, pb, argmax);
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(source.scalar_type()), op,
                              ": source must be a floating point tensor, got ",
                              source.scalar_type());
  const auto mf = pb.memory_format();
  s.out = new_output(pb.out_shape, source.options().memory_format(mf));
  s.done = pb.out_numel() == 0;
  if (s.done) return s;
  s.source = source.contiguous(mf);
  s.argmax = argmax.contiguous(mf);
  return s;
}

// avg_pool: input x and output.  int64_ok: the device averages int64
// inputs (the CPU does, as torch's CPU kernel; CUDA does not).
struct AvgPoolSetup {
  Problem pb;
  at::Tensor x, out;
  int64_t divisor_override = 0;  // 0: none
  bool done = false;
};

inline AvgPoolSetup avg_pool_prologue(const at::Tensor& self, c10::IntArrayRef kernel_size,
                                      c10::IntArrayRef stride, c10::IntArrayRef padding,
                                      bool ceil_mode, std::optional<int64_t> divisor_override,
                                      bool channels_last, bool int64_ok) {
  const char* op = "poolext.avg_pool";
  check_divisor(op, divisor_override);
  AvgPoolSetup s;
  s.pb = make_problem(op, self.sizes(), kernel_size, stride, padding, {}, ceil_mode,
                      channels_last);
  const Problem& pb = s.pb;
  const auto dt = self.scalar_type();
  if (int64_ok) {
    TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(dt) || dt == at::kLong, op, ": input dtype ",
                                dt, " is not supported (floating point types and int64 are)");
  } else {
    TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(dt), op, ": input dtype ", dt,
                                " is not supported on ", self.device().type(),
                                " (floating point types are)");
  }
  s.divisor_override = divisor_override.value_or(0);
  const auto mf = pb.memory_format();
  s.out = new_output(pb.out_shape, self.options().memory_format(mf));
  s.done = pb.out_numel() == 0;
  if (s.done) return s;
  s.x = self.contiguous(mf);
  return s;
}

// avg_pool_backward: grad_input (uninitialised) and grad_output.
struct AvgPoolBackwardSetup {
  Problem pb;
  at::Tensor grad_input, go;
  int64_t divisor_override = 0;  // 0: none
  bool done = false;
};

inline AvgPoolBackwardSetup avg_pool_backward_prologue(
    const at::Tensor& grad_output, c10::IntArrayRef input_size, c10::IntArrayRef kernel_size,
    c10::IntArrayRef stride, c10::IntArrayRef padding, bool ceil_mode,
    std::optional<int64_t> divisor_override, bool channels_last) {
  const char* op = "poolext.avg_pool_backward";
  check_divisor(op, divisor_override);
  AvgPoolBackwardSetup s;
  s.pb = make_problem(op, input_size, kernel_size, stride, padding, {}, ceil_mode, channels_last);
  const Problem& pb = s.pb;
  check_grad_output(op, pb, grad_output);
  s.divisor_override = divisor_override.value_or(0);
  const auto mf = pb.memory_format();
  s.grad_input = new_output(input_size, grad_output.options().memory_format(mf));
  s.done = pb.in_numel() == 0;
  if (s.done) return s;
  s.go = grad_output.contiguous(mf);
  return s;
}

}  // namespace poolext
