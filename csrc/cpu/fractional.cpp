// Fractional max pooling on CPU: the ops of core/fractional_ops.h (the ones
// the CUDA ops run too), with their element functors run in parallel over
// output (forward, gather) or input (backward) elements, and torch's CPU
// interval arithmetic (the input's own type; windows outside the input
// refused).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../core/fractional_ops.h"
#include "runner.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <utility>

namespace poolext {
namespace cpu {
namespace {

// The forward over output rows of a contiguous input: each window scanned in
// the order of fractional::MaxForward::at() (rows of the window top to
// bottom, each left to right) with its max_takes rule.  For float, four
// outputs at a time in SSE2 lanes, the rule as masks (v > best, or v is NaN):
// a branch per element would mispredict about half the time on random data.
template <bool CL, typename scalar_t, typename index_t>
void forward_rows(const fractional::MaxForward<CL, scalar_t, index_t>& op, int64_t r0,
                  int64_t r1) {
  using acc_t = at::opmath_type<scalar_t>;
  const FractionalGeometry& g = op.g;
  const FractionalDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t kw = W.k, nrows = D.k * H.k;
  const bool track = op.argmax != nullptr || op.indices != nullptr;
  std::vector<const scalar_t*> win(nrows);
  std::vector<int32_t> taps(W.out);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t oh = r % H.out, od = (r / H.out) % D.out, plane = r / H.out / D.out;
    const int64_t* st = op.starts + plane * g.starts_row();
    const int64_t s0 = st[od], s1 = st[D.out + oh];
    const int64_t* sw = st + D.out + H.out;
    const scalar_t* src = op.in + plane * g.in_plane();
    for (int64_t jd = 0; jd < D.k; ++jd) {
      for (int64_t jh = 0; jh < H.k; ++jh) {
        win[jd * H.k + jh] = src + ((s0 + jd) * H.in + s1 + jh) * W.in;
      }
    }
    const int64_t e0 = ((plane * D.out + od) * H.out + oh) * W.out;
    scalar_t* out = op.out + e0;
    int64_t ow = 0;
#if defined(__SSE2__)
    if constexpr (std::is_same_v<scalar_t, float>) {
      for (; ow + 4 <= W.out; ow += 4) {
        const int64_t* s2 = sw + ow;
        __m128 best = _mm_set1_ps(-INFINITY);
        __m128i tap = _mm_setzero_si128();
        for (int64_t j = 0; j < nrows; ++j) {
          const float* row = win[j];
          for (int64_t w = 0; w < kw; ++w) {
            const __m128 v =
                _mm_set_ps(row[s2[3] + w], row[s2[2] + w], row[s2[1] + w], row[s2[0] + w]);
            const __m128 take = _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
            best = _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, best));
            if (track) {
              const __m128i m = _mm_castps_si128(take);
              const __m128i t = _mm_set1_epi32(static_cast<int32_t>(j * kw + w));
              tap = _mm_or_si128(_mm_and_si128(m, t), _mm_andnot_si128(m, tap));
            }
          }
        }
        _mm_storeu_ps(out + ow, best);
        if (track) _mm_storeu_si128(reinterpret_cast<__m128i*>(taps.data() + ow), tap);
      }
    }
#endif
    for (; ow < W.out; ++ow) {
      const int64_t s2 = sw[ow];
      acc_t best = lowest<acc_t>();
      int64_t best_tap = 0;
      for (int64_t j = 0; j < nrows; ++j) {
        const scalar_t* row = win[j] + s2;
        for (int64_t w = 0; w < kw; ++w) {
          const acc_t v = static_cast<acc_t>(row[w]);
          if (max_takes(v, best)) {
            best = v;
            best_tap = j * kw + w;
          }
        }
      }
      out[ow] = static_cast<scalar_t>(best);
      taps[ow] = static_cast<int32_t>(best_tap);
    }
    if (!track) continue;
    for (int64_t o = 0; o < W.out; ++o) {
      const int64_t t = taps[o];
      if (op.argmax != nullptr) store_tap(op.argmax, op.argmax_width, e0 + o, t);
      if (op.indices != nullptr) {
        const int64_t j = t / kw, jd = j / H.k, jh = j % H.k;
        op.indices[e0 + o] = ((s0 + jd) * H.in + s1 + jh) * W.in + sw[o] + t % kw;
      }
    }
  }
}

// The backward of a contiguous grad_input, one (n, c) plane per task: the
// plane is assembled in a buffer (in opmath type) from the outputs in
// increasing order, each adding its gradient at its winner, and written once.
// Every element gets the sum fractional::MaxBackward::at() gathers, in the
// same order (increasing output order, as torch's CPU backward adds); no
// element is written by two tasks.
template <typename tap_t, bool CL, typename scalar_t, typename index_t>
void backward_planes_t(const fractional::MaxBackward<CL, scalar_t, index_t>& op, int64_t p0,
                       int64_t p1) {
  using acc_t = at::opmath_type<scalar_t>;
  const FractionalGeometry& g = op.g;
  const FractionalDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const tap_t* argmax = static_cast<const tap_t*>(op.argmax);
  // the offset of each tap from its window's first element
  const int64_t khw = H.k * W.k, taps = g.kernel_volume();
  std::vector<int64_t> offset(taps);
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t jd = t / khw, r = t - jd * khw, jh = r / W.k;
    offset[t] = (jd * H.in + jh) * W.in + (r - jh * W.k);
  }
  std::vector<acc_t> acc(g.in_plane());
  for (int64_t plane = p0; plane < p1; ++plane) {
    const int64_t* st = op.starts + plane * g.starts_row();
    const int64_t *sh = st + D.out, *sw = st + D.out + H.out;
    std::fill(acc.begin(), acc.end(), acc_t(0));
    const int64_t o0 = plane * g.out_plane();
    for (int64_t od = 0; od < D.out; ++od) {
      for (int64_t oh = 0; oh < H.out; ++oh) {
        const int64_t orow = o0 + (od * H.out + oh) * W.out;
        const tap_t* am = argmax + orow;
        const scalar_t* go = op.grad_out + orow;
        acc_t* row = acc.data() + (st[od] * H.in + sh[oh]) * W.in;
        for (int64_t ow = 0; ow < W.out; ++ow) {
          const int64_t t = am[ow];
          // a tap past the window (an argmax from elsewhere) is never used as an address
          if (t >= 0 && t < taps) row[sw[ow] + offset[t]] += static_cast<acc_t>(go[ow]);
        }
      }
    }
    scalar_t* gi = op.grad_in + plane * g.in_plane();
    for (int64_t i = 0; i < g.in_plane(); ++i) gi[i] = static_cast<scalar_t>(acc[i]);
  }
}

template <bool CL, typename scalar_t, typename index_t>
void backward_planes(const fractional::MaxBackward<CL, scalar_t, index_t>& op, int64_t p0,
                     int64_t p1) {
  switch (op.argmax_width) {
    case 1: return backward_planes_t<uint8_t>(op, p0, p1);
    case 2: return backward_planes_t<uint16_t>(op, p0, p1);
    default: return backward_planes_t<int32_t>(op, p0, p1);
  }
}

template <typename Op>
struct RowLoop : std::false_type {};
template <typename S, typename I>
struct RowLoop<fractional::MaxForward<false, S, I>> : std::true_type {
  static int64_t rows(const FractionalGeometry& g) { return g.N * g.C * g.dim[0].out * g.dim[1].out; }
};
template <typename S, typename I>
struct RowLoop<fractional::MaxBackward<false, S, I>> : std::true_type {
  static int64_t rows(const FractionalGeometry& g) { return g.N * g.C; }  // planes
};

// ParallelRunner, but a contiguous forward runs over rows and a contiguous
// backward over planes (above),
// and a functor with range(i0, i1) (the element functors of
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
    if constexpr (RowLoop<Op>::value) {
      const int64_t rows = RowLoop<Op>::rows(op.g);
      const int64_t grain = std::max<int64_t>(1, 2048 * rows / std::max<int64_t>(n, 1));
      at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) { row_loop(op, r0, r1); });
    } else if constexpr (has_range<Op>::value) {
      at::parallel_for(0, n, 2048, [&](int64_t i0, int64_t i1) { op.range(i0, i1); });
    } else {
      ParallelRunner::operator()(op, n);
    }
  }

 private:
  template <bool CL, typename S, typename I>
  static void row_loop(const fractional::MaxForward<CL, S, I>& op, int64_t r0, int64_t r1) {
    forward_rows(op, r0, r1);
  }
  template <bool CL, typename S, typename I>
  static void row_loop(const fractional::MaxBackward<CL, S, I>& op, int64_t r0, int64_t r1) {
    backward_planes(op, r0, r1);
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
