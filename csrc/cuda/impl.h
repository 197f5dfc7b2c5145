// Host side of the CUDA ops: argument checks, allocation, dtype and layout
// dispatch, in the same order and with the same messages as the CPU ops.
//
// Runner (core/run.h) decides how a functor runs over [0, n): CudaRunner
// (common.cuh) launches a kernel; the host emulation used by the tests
// (tests/cuda_emulation.cpp) runs the same functors in a loop.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/SymIntArrayRef.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/problem.h"
#include "../core/run.h"
#include "elements.h"

namespace poolext {
namespace cuda {

// Channels per thread of the fast channels_last kernels for scalar_t: a
// 16-byte access, at most 8 lanes.
template <typename scalar_t>
constexpr int kPack = 16 / sizeof(scalar_t) < 8 ? static_cast<int>(16 / sizeof(scalar_t)) : 8;

// Whether every pointer is aligned for accesses of `bytes`.
inline bool aligned(std::initializer_list<const void*> ptrs, size_t bytes) {
  for (const void* p : ptrs) {
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % bytes != 0) return false;
  }
  return true;
}

// run_elements (core/run.h), but taking the int32 fast path (elements.h)
// when the problem fits it: make_fast(layout, lanes) builds its functor, lanes being
// std::integral_constant<int, V>: channels_last runs n / V groups of V
// channels when `packed` (the pointers aligned for V-element accesses) and
// C % V == 0, else V = 1.
template <int V, typename Runner, typename MakeFast, typename Make>
void run_fast_elements(const Runner& run, bool channels_last, bool packed, int64_t n,
                  int64_t max_numel, const Geometry& g, MakeFast&& make_fast, Make&& make) {
  if (run.fits_int32(max_numel) && Geometry32::fits(g)) {
    using one = std::integral_constant<int, 1>;
    if (!channels_last) {
      run(make_fast(std::false_type{}, one{}), n);
    } else if (packed && V > 1 && g.C % V == 0) {
      run(make_fast(std::true_type{}, std::integral_constant<int, V>{}), n / V);
    } else {
      run(make_fast(std::true_type{}, one{}), n);
    }
    return;
  }
  ::poolext::run_elements(run, channels_last, n, max_numel, std::forward<Make>(make));
}

template <typename Runner>
std::tuple<at::Tensor, at::Tensor, at::Tensor> max_pool_impl(
    const Runner& run, const at::Tensor& self, at::IntArrayRef kernel_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
    bool channels_last, bool with_argmax, bool with_indices) {
  const char* op = "poolext.max_pool";
  Problem pb = make_problem(op, self.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  TORCH_CHECK_NOT_IMPLEMENTED(self.scalar_type() != at::kBool && !self.is_complex(), op,
                              ": input dtype ", self.scalar_type(), " is not supported");
  const auto mf = pb.memory_format();
  const at::Tensor x = self.contiguous(mf);
  at::Tensor out = at::empty(pb.out_shape, self.options().memory_format(mf));
  const auto am_type = argmax_dtype(pb.g.kernel_volume());
  at::Tensor argmax = with_argmax
                          ? at::empty(pb.out_shape, self.options().dtype(am_type).memory_format(mf))
                          : none_like(self, am_type);
  at::Tensor indices =
      with_indices ? at::empty(pb.out_shape, self.options().dtype(at::kLong).memory_format(mf))
                   : none_like(self, at::kLong);
  if (pb.out_numel() == 0) return {out, argmax, indices};
  const Geometry g = pb.g;
  const int am_width = with_argmax ? static_cast<int>(c10::elementSize(am_type)) : 0;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.max_pool", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    void* am = with_argmax ? argmax.mutable_data_ptr() : nullptr;
    int64_t* idx = with_indices ? indices.mutable_data_ptr<int64_t>() : nullptr;
    constexpr int V = kPack<scalar_t>;
    const bool packed = aligned({in, o}, sizeof(scalar_t) * V);
    run_fast_elements<V>(
        run, channels_last, packed, pb.out_numel(), max_numel, g,
        [&](auto cl, auto lanes) {
          return MaxPoolForward32<decltype(cl)::value, scalar_t, decltype(lanes)::value>(
              g, in, o, am, am_width, idx);
        },
        [&](auto cl, auto index) {
          return MaxPoolForward<decltype(cl)::value, scalar_t, decltype(index)>{g, in, o, am,
                                                                                am_width, idx};
        });
  });
  return {out, argmax, indices};
}

template <typename Runner>
at::Tensor max_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                  const at::Tensor& argmax, c10::SymIntArrayRef input_size,
                                  at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation,
                                  bool ceil_mode, bool channels_last) {
  const char* op = "poolext.max_pool_backward";
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  Problem pb = make_problem(op, sizes, kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  check_grad_output(op, pb, grad_output);
  check_argmax(op, pb, argmax);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = at::empty(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  const at::Tensor amc = argmax.contiguous(mf);
  const Geometry g = pb.g;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(),
                                  "poolext.max_pool_backward", [&] {
    dispatch_argmax(amc.scalar_type(), [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* gop = go.const_data_ptr<scalar_t>();
      const arg_t* am = static_cast<const arg_t*>(amc.const_data_ptr());
      scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
      constexpr int V = kPack<scalar_t>;
      const bool packed = aligned({gop, gi}, sizeof(scalar_t) * V) &&
                          aligned({am}, sizeof(arg_t) * V);
      run_fast_elements<V>(
          run, channels_last, packed, pb.in_numel(), max_numel, g,
          [&](auto cl, auto lanes) {
            return MaxPoolBackward32<decltype(cl)::value, scalar_t, arg_t,
                                     decltype(lanes)::value>(g, gop, am, gi);
          },
          [&](auto cl, auto index) {
            return MaxPoolBackward<decltype(cl)::value, scalar_t, arg_t, decltype(index)>{
                g, gop, am, gi};
          });
    });
  });
  return grad_input;
}

template <typename Runner>
at::Tensor max_pool_gather_impl(const Runner& run, const at::Tensor& source,
                                const at::Tensor& argmax, at::IntArrayRef kernel_size,
                                at::IntArrayRef stride, at::IntArrayRef padding,
                                at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  const char* op = "poolext.max_pool_gather";
  Problem pb = make_problem(op, source.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  check_argmax(op, pb, argmax);
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(source.scalar_type()), op,
                              ": source must be a floating point tensor, got ", source.scalar_type());
  const auto mf = pb.memory_format();
  at::Tensor out = at::empty(pb.out_shape, source.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor src = source.contiguous(mf);
  const at::Tensor amc = argmax.contiguous(mf);
  const Geometry g = pb.g;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  const int am_width = static_cast<int>(amc.element_size());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(),
                                  "poolext.max_pool_gather", [&] {
    const scalar_t* s = src.const_data_ptr<scalar_t>();
    const void* am = amc.const_data_ptr();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    ::poolext::run_elements(run, channels_last, pb.out_numel(), max_numel, [&](auto cl, auto index) {
      return MaxPoolGather<decltype(cl)::value, scalar_t, decltype(index)>{g, s, am, am_width, o};
    });
  });
  return out;
}

template <typename Runner>
at::Tensor avg_pool_impl(const Runner& run, const at::Tensor& self, at::IntArrayRef kernel_size,
                         at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                         bool count_include_pad, std::optional<int64_t> divisor_override,
                         bool channels_last) {
  const char* op = "poolext.avg_pool";
  check_divisor(op, divisor_override);
  Problem pb = make_problem(op, self.sizes(), kernel_size, stride, padding, {}, ceil_mode,
                            channels_last);
  const auto dt = self.scalar_type();
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(dt), op, ": input dtype ", dt,
                              " is not supported on ", self.device().type(),
                              " (floating point types are)");
  const auto mf = pb.memory_format();
  at::Tensor out = at::empty(pb.out_shape, self.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor x = self.contiguous(mf);
  const Geometry g = pb.g;
  const int64_t dov = divisor_override.value_or(0);
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dt, "poolext.avg_pool", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    constexpr int V = kPack<scalar_t>;
    const bool packed = aligned({in, o}, sizeof(scalar_t) * V);
    run_fast_elements<V>(
        run, channels_last, packed, pb.out_numel(), max_numel, g,
        [&](auto cl, auto lanes) {
          return AvgPoolForward32<decltype(cl)::value, scalar_t, decltype(lanes)::value>(
              g, in, o, count_include_pad, dov);
        },
        [&](auto cl, auto index) {
          return AvgPoolForward<decltype(cl)::value, scalar_t, decltype(index)>{
              g, in, o, count_include_pad, dov};
        });
  });
  return out;
}

template <typename Runner>
at::Tensor avg_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                  c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                  at::IntArrayRef stride, at::IntArrayRef padding,
                                  bool ceil_mode, bool count_include_pad,
                                  std::optional<int64_t> divisor_override, bool channels_last) {
  const char* op = "poolext.avg_pool_backward";
  check_divisor(op, divisor_override);
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  Problem pb = make_problem(op, sizes, kernel_size, stride, padding, {}, ceil_mode, channels_last);
  check_grad_output(op, pb, grad_output);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = at::empty(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  const Geometry g = pb.g;
  const int64_t dov = divisor_override.value_or(0);
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(),
                                  "poolext.avg_pool_backward", [&] {
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
    constexpr int V = kPack<scalar_t>;
    const bool packed = aligned({gop, gi}, sizeof(scalar_t) * V);
    run_fast_elements<V>(
        run, channels_last, packed, pb.in_numel(), max_numel, g,
        [&](auto cl, auto lanes) {
          return AvgPoolBackward32<decltype(cl)::value, scalar_t, decltype(lanes)::value>(
              g, gop, gi, count_include_pad, dov);
        },
        [&](auto cl, auto index) {
          return AvgPoolBackward<decltype(cl)::value, scalar_t, decltype(index)>{
              g, gop, gi, count_include_pad, dov};
        });
  });
  return grad_input;
}

}  // namespace cuda
}  // namespace poolext
