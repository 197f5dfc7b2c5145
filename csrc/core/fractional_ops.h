// Host side of the fractional max pooling ops, for both devices: argument
// checks, the starts and cover tables, allocation and dtype/layout dispatch.
// Runner runs an element functor of fractional.h over [0, n) (see run.h):
// the CPU op passes a parallel_for loop, the CUDA op a kernel launch.
// kDeviceRule picks the interval arithmetic of torch's CUDA kernels (the
// accumulate type, starts clamped) over that of its CPU kernels (the input's
// type, a table leaving the input refused).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/SymIntArrayRef.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "fractional.h"
#include "problem.h"
#include "run.h"

namespace poolext {

struct FractionalProblem {
  FractionalGeometry g;
  bool batched = true;
  std::vector<int64_t> in_shape, out_shape;

  int64_t in_numel() const { return g.N * g.C * g.in_plane(); }
  int64_t out_numel() const { return g.N * g.C * g.out_plane(); }
  at::MemoryFormat memory_format(bool channels_last) const {
    if (!channels_last) return at::MemoryFormat::Contiguous;
    return g.rank == 2 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
  }
};

// `sizes`: the input's sizes.  What memory safety needs: a rank of 2 or 3,
// positive kernels, non-negative output sizes, non-empty non-batch dims and,
// where there are outputs, windows that fit (S + k - 1 <= L; torch's 3d
// rule, S + k - 1 < L, is the Python layer's).
inline FractionalProblem make_fractional_problem(const char* op, c10::IntArrayRef sizes,
                                                 c10::IntArrayRef kernel_size,
                                                 c10::IntArrayRef output_size,
                                                 bool channels_last) {
  const int64_t r = static_cast<int64_t>(kernel_size.size());
  TORCH_CHECK(r == 2 || r == 3, op, ": kernel_size must have 2 or 3 entries, got kernel_size=",
              list_str(kernel_size));
  TORCH_CHECK(static_cast<int64_t>(output_size.size()) == r, op, ": output_size must have ",
              num(r), " entries, got output_size=", list_str(output_size));
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(ndim == r + 1 || ndim == r + 2, op, ": expected a ", num(r + 1),
              "D (unbatched) or ", num(r + 2), "D (batched) input, got input of shape ",
              list_str(sizes));
  for (int64_t i = 1; i < ndim; ++i) {
    TORCH_CHECK(sizes[i] > 0, op,
                ": input dims other than the first must be non-zero, got input of shape ",
                list_str(sizes));
  }
  TORCH_CHECK(!channels_last || ndim == r + 2, op, ": channels_last needs a batched input");
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  FractionalProblem pb;
  pb.g.rank = static_cast<int>(r);
  pb.batched = ndim == r + 2;
  pb.g.N = pb.batched ? sizes[0] : 1;
  pb.g.C = sizes[ndim - r - 1];
  pb.in_shape.assign(sizes.begin(), sizes.end());
  pb.out_shape.assign(sizes.begin(), sizes.end());
  int64_t volume = 1;
  for (int64_t a = 0; a < r; ++a) {
    const int64_t in = sizes[ndim - r + a], k = kernel_size[a], out = output_size[a];
    TORCH_CHECK(k > 0 && k <= kMax, op, ": kernel_size must be positive (and fit in int32), got ",
                "kernel_size=", list_str(kernel_size));
    TORCH_CHECK(k <= kMax / volume, op, ": a window of kernel_size=", list_str(kernel_size),
                " has more than 2^31-1 elements");
    volume *= k;
    TORCH_CHECK(out >= 0, op, ": output_size must be non-negative, got output_size=",
                list_str(output_size));
    TORCH_CHECK(in <= kMax, op, ": spatial input sizes past 2^31-1 are not supported, got input "
                "of shape ", list_str(sizes));
    TORCH_CHECK(out == 0 || (k <= in && out - 1 <= in - k), op, ": output_size=",
                list_str(output_size), " with kernel_size=", list_str(kernel_size),
                " needs windows past the input of shape ", list_str(sizes));
    pb.g.dim[3 - r + a] = FractionalDim{in, out, k};
    pb.out_shape[ndim - r + a] = out;
  }
  return pb;
}

inline void check_fractional_samples(const char* op, const FractionalProblem& pb,
                                     const at::Tensor& samples, at::ScalarType dtype) {
  TORCH_CHECK(samples.scalar_type() == dtype, op, ": samples have dtype ", samples.scalar_type(),
              ", expected ", dtype);
  TORCH_CHECK(samples.dim() == 3 && samples.size(0) >= pb.g.N && samples.size(1) == pb.g.C &&
                  samples.size(2) == pb.g.rank,
              op, ": samples must have shape (N', C, rank) with N' >= ", num(pb.g.N), ", C = ",
              num(pb.g.C), " and rank = ", num(pb.g.rank), ", got samples of shape ",
              list_str(samples.sizes()));
}

inline void check_fractional_floating(const char* op, const at::Tensor& t) {
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(t.scalar_type()), op, ": input dtype ",
                              t.scalar_type(), " is not supported (floating point types only)");
}

// The CPU rule: refuse a starts table (on the host) with a window outside the
// input, as torch's CPU kernel does (its assert, checked W first, then H,
// then T, as its scan meets them), or with starts that run backwards.
inline void check_fractional_starts(const char* op, const FractionalGeometry& g,
                                    const at::Tensor& starts) {
  const int64_t* s = starts.const_data_ptr<int64_t>();
  const int64_t row = g.starts_row(), planes = g.N * g.C;
  static const char* const kAssert[3] = {"t2 >= 0 && t2 < inputT", "h2 >= 0 && h2 < inputH",
                                         "w2 >= 0 && w2 < inputW"};
  for (int64_t p = 0; p < planes; ++p) {
    for (int i = 2; i >= 3 - g.rank; --i) {
      const FractionalDim& dm = g.dim[i];
      const int64_t* v = s + p * row + g.starts_at(i);
      for (int64_t o = 0; o < dm.out; ++o) {
        TORCH_CHECK(v[o] >= 0 && v[o] <= dm.in - dm.k, kAssert[i], " (", op,
                    ": the samples of plane ", num(p), " put window ", num(o), " of spatial dim ",
                    num(i - (3 - g.rank)), " at ", num(v[o]), ", outside [0, ",
                    num(dm.in - dm.k), "])");
      }
    }
    for (int i = 3 - g.rank; i < 3; ++i) {
      const int64_t* v = s + p * row + g.starts_at(i);
      for (int64_t o = 1; o < g.dim[i].out; ++o) {
        TORCH_CHECK(v[o - 1] <= v[o], op, ": the samples of plane ", num(p),
                    " give windows out of order in spatial dim ", num(i - (3 - g.rank)),
                    " (window ", num(o), " starts at ", num(v[o]), ", before window ", num(o - 1),
                    " at ", num(v[o - 1]), "); samples in [0, 1) never do");
      }
    }
  }
}

// The starts table of a problem, on the samples' device.
template <bool kDeviceRule, typename Runner>
at::Tensor fractional_starts(const Runner& run, const char* op, const FractionalGeometry& g,
                             const at::Tensor& samples) {
  const at::Tensor su = samples.contiguous();
  at::Tensor starts = at::empty({g.N * g.C * g.starts_row()}, su.options().dtype(at::kLong));
  if (starts.numel() == 0) return starts;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, su.scalar_type(), "poolext.fractional", [&] {
    using interval_t = std::conditional_t<kDeviceRule, at::opmath_type<scalar_t>, scalar_t>;
    run(fractional::Starts<scalar_t, interval_t>{g, su.const_data_ptr<scalar_t>(),
                                                 starts.mutable_data_ptr<int64_t>(), kDeviceRule},
        starts.numel());
  });
  if (!kDeviceRule) check_fractional_starts(op, g, starts);
  return starts;
}

template <bool kDeviceRule, typename Runner>
std::tuple<at::Tensor, at::Tensor, at::Tensor> fractional_max_pool_impl(
    const Runner& run, const at::Tensor& self, c10::IntArrayRef kernel_size,
    c10::IntArrayRef output_size, const at::Tensor& samples, bool channels_last, bool with_argmax,
    bool with_indices) {
  const char* op = "poolext.fractional_max_pool";
  const FractionalProblem pb =
      make_fractional_problem(op, self.sizes(), kernel_size, output_size, channels_last);
  check_fractional_floating(op, self);
  check_fractional_samples(op, pb, samples, self.scalar_type());
  const auto am_type = argmax_dtype(pb.g.kernel_volume());
  at::Tensor out = new_output(pb.out_shape, self.options());
  at::Tensor argmax = with_argmax ? new_output(pb.out_shape, self.options().dtype(am_type))
                                  : none_like(self, am_type);
  at::Tensor indices = with_indices ? new_output(pb.out_shape, self.options().dtype(at::kLong))
                                    : none_like(self, at::kLong);
  if (pb.out_numel() == 0) return {out, argmax, indices};
  const FractionalGeometry g = pb.g;
  const at::Tensor starts = fractional_starts<kDeviceRule>(run, op, g, samples);
  const at::Tensor x = self.contiguous(pb.memory_format(channels_last));
  const int width = with_argmax ? static_cast<int>(c10::elementSize(am_type)) : 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.fractional", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    const int64_t* st = starts.const_data_ptr<int64_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    void* am = with_argmax ? argmax.mutable_data_ptr() : nullptr;
    int64_t* idx = with_indices ? indices.mutable_data_ptr<int64_t>() : nullptr;
    run_elements(run, channels_last, pb.out_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return fractional::MaxForward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, in, st, o, am, width, idx};
                 });
  });
  return {out, argmax, indices};
}

inline void check_fractional_argmax(const char* op, const FractionalProblem& pb,
                                    const at::Tensor& argmax) {
  const auto expected = argmax_dtype(pb.g.kernel_volume());
  TORCH_CHECK(argmax.scalar_type() == expected, op, ": argmax has dtype ", argmax.scalar_type(),
              ", expected ", expected, " for a window of ", num(pb.g.kernel_volume()),
              " elements");
  TORCH_CHECK(argmax.sizes() == c10::IntArrayRef(pb.out_shape), op, ": argmax has shape ",
              list_str(argmax.sizes()), ", expected ", list_str(pb.out_shape));
}

template <bool kDeviceRule, typename Runner>
at::Tensor fractional_max_pool_backward_impl(const Runner& run, const at::Tensor& grad_output,
                                             const at::Tensor& argmax, const at::Tensor& samples,
                                             c10::SymIntArrayRef input_size,
                                             c10::IntArrayRef kernel_size, bool channels_last) {
  const char* op = "poolext.fractional_max_pool_backward";
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  const int64_t r = static_cast<int64_t>(kernel_size.size());
  TORCH_CHECK(grad_output.dim() == static_cast<int64_t>(sizes.size()) && grad_output.dim() >= r,
              op, ": grad_output of shape ", list_str(grad_output.sizes()),
              " does not match input_size=", list_str(sizes));
  const auto go_sizes = grad_output.sizes();
  for (int64_t i = 0; i < grad_output.dim() - r; ++i) {
    TORCH_CHECK(go_sizes[i] == sizes[i], op, ": grad_output of shape ", list_str(go_sizes),
                " does not match input_size=", list_str(sizes));
  }
  const FractionalProblem pb = make_fractional_problem(
      op, sizes, kernel_size, go_sizes.slice(go_sizes.size() - r), channels_last);
  TORCH_CHECK(at::isFloatingType(grad_output.scalar_type()), op,
              ": grad_output must be a floating point tensor, got ", grad_output.scalar_type());
  check_fractional_argmax(op, pb, argmax);
  check_fractional_samples(op, pb, samples, grad_output.scalar_type());
  at::Tensor grad_input =
      new_output(sizes, grad_output.options().memory_format(pb.memory_format(channels_last)));
  if (pb.in_numel() == 0) return grad_input;
  if (pb.out_numel() == 0) return grad_input.zero_();
  const FractionalGeometry g = pb.g;
  const at::Tensor starts = fractional_starts<kDeviceRule>(run, op, g, samples);
  at::Tensor cover = at::empty({g.N * g.C * g.cover_row()}, starts.options());
  run(fractional::Cover{g, starts.const_data_ptr<int64_t>(), cover.mutable_data_ptr<int64_t>()},
      cover.numel() / 2);
  const at::Tensor go = grad_output.contiguous();
  const at::Tensor am = argmax.contiguous();
  const int width = static_cast<int>(c10::elementSize(am.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.fractional", [&] {
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    const void* amp = am.const_data_ptr();
    const int64_t* st = starts.const_data_ptr<int64_t>();
    const int64_t* cv = cover.const_data_ptr<int64_t>();
    scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
    run_elements(run, channels_last, pb.in_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return fractional::MaxBackward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, gop, amp, width, st, cv, gi};
                 });
  });
  return grad_input;
}

template <bool kDeviceRule, typename Runner>
at::Tensor fractional_max_pool_gather_impl(const Runner& run, const at::Tensor& source,
                                           const at::Tensor& argmax, const at::Tensor& samples,
                                           c10::IntArrayRef kernel_size,
                                           c10::IntArrayRef output_size, bool channels_last) {
  const char* op = "poolext.fractional_max_pool_gather";
  const FractionalProblem pb =
      make_fractional_problem(op, source.sizes(), kernel_size, output_size, channels_last);
  check_fractional_floating(op, source);
  check_fractional_argmax(op, pb, argmax);
  check_fractional_samples(op, pb, samples, source.scalar_type());
  at::Tensor out = new_output(pb.out_shape, source.options());
  if (pb.out_numel() == 0) return out;
  const FractionalGeometry g = pb.g;
  const at::Tensor starts = fractional_starts<kDeviceRule>(run, op, g, samples);
  const at::Tensor src = source.contiguous(pb.memory_format(channels_last));
  const at::Tensor am = argmax.contiguous();
  const int width = static_cast<int>(c10::elementSize(am.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "poolext.fractional", [&] {
    const scalar_t* s = src.const_data_ptr<scalar_t>();
    const void* amp = am.const_data_ptr();
    const int64_t* st = starts.const_data_ptr<int64_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    run_elements(run, channels_last, pb.out_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return fractional::MaxGather<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, s, amp, width, st, o};
                 });
  });
  return out;
}

}  // namespace poolext
