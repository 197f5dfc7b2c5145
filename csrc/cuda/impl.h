// Host side of the CUDA ops: after the shared prologue (core/prologue.h:
// checks and allocation, as on the CPU), the dtype, layout and index-width
// dispatch to the element functors of elements.h.
//
// Runner (core/run.h) decides how a functor runs over [0, n): CudaRunner
// (common.cuh) launches a kernel; the host emulation used by the tests
// (tests/cuda_emulation.cpp) runs the same functors in a loop.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/prologue.h"
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
// when the problem fits it: make_fast(layout, lanes) builds its functor,
// lanes being std::integral_constant<int, V>: channels_last runs n / V groups
// of V channels when `packed` (the pointers aligned for V-element accesses)
// and C % V == 0, else V = 1.
template <int V, typename Runner, typename MakeFast, typename Make>
void run_fast_elements(const Runner& run, bool channels_last, bool packed, int64_t n,
                       int64_t max_numel, const Geometry& g, MakeFast&& make_fast,
                       Make&& make) {
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
  MaxPoolSetup s = max_pool_prologue(self, kernel_size, stride, padding, dilation, ceil_mode,
                                     channels_last, with_argmax, with_indices);
  if (s.done) return {s.out, s.argmax, s.indices};
  const Problem& pb = s.pb;
  const Geometry g = pb.g;
  const int am_width = with_argmax ? static_cast<int>(s.argmax.element_size()) : 0;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, s.x.scalar_type(), "poolext.max_pool", [&] {
    const scalar_t* in = s.x.const_data_ptr<scalar_t>();
    scalar_t* o = s.out.mutable_data_ptr<scalar_t>();
    void* am = with_argmax ? s.argmax.mutable_data_ptr() : nullptr;
    int64_t* idx = with_indices ? s.indices.mutable_data_ptr<int64_t>() : nullptr;
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
  return {s.out, s.argmax, s.indices};
}

template <typename Runner>
at::Tensor max_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                  const at::Tensor& argmax, c10::SymIntArrayRef input_size,
                                  at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation,
                                  bool ceil_mode, bool channels_last) {
  MaxPoolBackwardSetup s = max_pool_backward_prologue(
      grad_output, argmax, C10_AS_INTARRAYREF_SLOW(input_size), kernel_size, stride, padding,
      dilation, ceil_mode, channels_last);
  if (s.done) return s.grad_input;
  const Problem& pb = s.pb;
  const Geometry g = pb.g;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.go.scalar_type(),
                                  "poolext.max_pool_backward", [&] {
    dispatch_argmax(s.argmax.scalar_type(), [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* gop = s.go.const_data_ptr<scalar_t>();
      const arg_t* am = static_cast<const arg_t*>(s.argmax.const_data_ptr());
      scalar_t* gi = s.grad_input.mutable_data_ptr<scalar_t>();
      constexpr int V = kPack<scalar_t>;
      const bool packed = aligned({gop, gi}, sizeof(scalar_t) * V) &&
                          aligned({am}, sizeof(arg_t) * V);
      if (tiles(g) && run.fits_int32(max_numel) && Geometry32::fits(g)) {
        // Window-major (elements.h): one work item per window (per V channels of one).
        const int64_t n = pb.out_numel();
        if (!channels_last) {
          run(MaxPoolBackwardTiled32<false, scalar_t, arg_t>(g, gop, am, gi), n);
        } else if (packed && V > 1 && g.C % V == 0) {
          run(MaxPoolBackwardTiled32<true, scalar_t, arg_t, V>(g, gop, am, gi), n / V);
        } else {
          run(MaxPoolBackwardTiled32<true, scalar_t, arg_t>(g, gop, am, gi), n);
        }
        return;
      }
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
  return s.grad_input;
}

template <typename Runner>
at::Tensor max_pool_gather_impl(const Runner& run, const at::Tensor& source,
                                const at::Tensor& argmax, at::IntArrayRef kernel_size,
                                at::IntArrayRef stride, at::IntArrayRef padding,
                                at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  MaxPoolGatherSetup s = max_pool_gather_prologue(source, argmax, kernel_size, stride, padding,
                                                  dilation, ceil_mode, channels_last);
  if (s.done) return s.out;
  const Problem& pb = s.pb;
  const Geometry g = pb.g;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  const int am_width = static_cast<int>(s.argmax.element_size());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.source.scalar_type(),
                                  "poolext.max_pool_gather", [&] {
    const scalar_t* src = s.source.const_data_ptr<scalar_t>();
    const void* am = s.argmax.const_data_ptr();
    scalar_t* o = s.out.mutable_data_ptr<scalar_t>();
    ::poolext::run_elements(
        run, channels_last, pb.out_numel(), max_numel, [&](auto cl, auto index) {
          return MaxPoolGather<decltype(cl)::value, scalar_t, decltype(index)>{g, src, am,
                                                                               am_width, o};
        });
  });
  return s.out;
}

template <typename Runner>
at::Tensor avg_pool_impl(const Runner& run, const at::Tensor& self, at::IntArrayRef kernel_size,
                         at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                         bool count_include_pad, std::optional<int64_t> divisor_override,
                         bool channels_last) {
  // Floating point inputs only, as torch's CUDA kernel.
  AvgPoolSetup s = avg_pool_prologue(self, kernel_size, stride, padding, ceil_mode,
                                     divisor_override, channels_last, /*int64_ok=*/false);
  if (s.done) return s.out;
  const Problem& pb = s.pb;
  const Geometry g = pb.g;
  const int64_t dov = s.divisor_override;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.x.scalar_type(),
                                  "poolext.avg_pool", [&] {
    const scalar_t* in = s.x.const_data_ptr<scalar_t>();
    scalar_t* o = s.out.mutable_data_ptr<scalar_t>();
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
  return s.out;
}

template <typename Runner>
at::Tensor avg_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                  c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                  at::IntArrayRef stride, at::IntArrayRef padding,
                                  bool ceil_mode, bool count_include_pad,
                                  std::optional<int64_t> divisor_override, bool channels_last) {
  AvgPoolBackwardSetup s = avg_pool_backward_prologue(
      grad_output, C10_AS_INTARRAYREF_SLOW(input_size), kernel_size, stride, padding, ceil_mode,
      divisor_override, channels_last);
  if (s.done) return s.grad_input;
  const Problem& pb = s.pb;
  const Geometry g = pb.g;
  const int64_t dov = s.divisor_override;
  const int64_t max_numel = std::max(pb.in_numel(), pb.out_numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.go.scalar_type(),
                                  "poolext.avg_pool_backward", [&] {
    const scalar_t* gop = s.go.const_data_ptr<scalar_t>();
    scalar_t* gi = s.grad_input.mutable_data_ptr<scalar_t>();
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
  return s.grad_input;
}

}  // namespace cuda
}  // namespace poolext
