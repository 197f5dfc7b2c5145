// Per-element bodies of the CUDA kernels.
//
// Each functor computes one output element (forward, gather) or one input
// element (backward) from its flat index in the problem's layout, with the
// rules of geometry.h, in the same order as the CPU kernels.  A kernel runs a
// functor over a grid-stride loop (common.cuh).  They are host-device code on
// purpose: tests/cuda_emulation.cpp runs these very bodies serially on the
// host against the CPU kernels, which checks their index arithmetic on
// machines without a GPU.
//
// Layouts and the element helpers (Pos, origin, step, store_tap, load_tap)
// are those of core/elements.h: consecutive threads take consecutive
// elements, so in channels_last their loads and stores coalesce over C.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

#include <cstdint>

#include "../core/elements.h"
#include "../core/geometry.h"

namespace poolext {
namespace cuda {

// Max pooling forward, one output element: starts from the lowest value at
// Geometry::first_tap, tap (lo, lo, lo), as the CPU kernels do, and scans the
// in-bounds taps in row-major (d, h, w) order, taking a tap when
// max_takes(v, best).  A window without in-bounds taps (dilation) keeps the
// lowest value at first_tap.
template <bool CL, typename scalar_t, typename index_t>
struct MaxPoolForward {
  using index_type = index_t;
  Geometry g;
  const scalar_t* in;
  scalar_t* out;
  void* argmax;       // null, or the compact argmax of width argmax_width
  int argmax_width;
  int64_t* indices;   // null, or torch-style int64 plane indices

  C10_HOST_DEVICE void operator()(index_t e) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> o(e, g.C, D.out, H.out, W.out);
    const scalar_t* src = in + origin<CL>(o.base, o.c, g.in_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    const int64_t jd0 = D.tap_lo(o.d), jd1 = D.tap_hi(o.d);
    const int64_t jh0 = H.tap_lo(o.h), jh1 = H.tap_hi(o.h);
    const int64_t jw0 = W.tap_lo(o.w), jw1 = W.tap_hi(o.w);
    acc_t best = lowest<acc_t>();
    int64_t best_tap = g.tap(jd0, jh0, jw0);  // g.first_tap(o.d, o.h, o.w)
    for (int64_t jd = jd0; jd < jd1; ++jd) {
      const int64_t id = D.start(o.d) + jd * D.d;
      for (int64_t jh = jh0; jh < jh1; ++jh) {
        const int64_t row = (id * H.in + H.start(o.h) + jh * H.d) * W.in + W.start(o.w);
        for (int64_t jw = jw0; jw < jw1; ++jw) {
          const acc_t v = static_cast<acc_t>(src[(row + jw * W.d) * st]);
          if (max_takes(v, best)) {
            best = v;
            best_tap = g.tap(jd, jh, jw);
          }
        }
      }
    }
    out[e] = static_cast<scalar_t>(best);
    store_tap(argmax, argmax_width, e, best_tap);
    if (indices != nullptr) indices[e] = g.plane_index(o.d, o.h, o.w, best_tap);
  }
};

// Max pooling backward, one input element: sums grad_output over the windows
// that cover it and chose it, in increasing output order (od, oh, ow).
template <bool CL, typename scalar_t, typename arg_t, typename index_t>
struct MaxPoolBackward {
  using index_type = index_t;
  Geometry g;
  const scalar_t* grad_out;
  const arg_t* argmax;
  scalar_t* grad_in;

  C10_HOST_DEVICE void operator()(index_t i) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> p(i, g.C, D.in, H.in, W.in);
    const int64_t o0 = origin<CL>(p.base, p.c, g.out_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t acc = 0;
    D.for_each_cover(p.d, [&](int64_t od, int64_t jd) {
      H.for_each_cover(p.h, [&](int64_t oh, int64_t jh) {
        const int64_t orow = (od * H.out + oh) * W.out;
        const int64_t tdh = g.tap(jd, jh, 0);
        W.for_each_cover(p.w, [&](int64_t ow, int64_t jw) {
          const int64_t o = o0 + (orow + ow) * st;
          // Adds 0 when the window chose another tap, as the CPU kernel does.
          acc += static_cast<int64_t>(argmax[o]) == tdh + jw ? static_cast<acc_t>(grad_out[o])
                                                              : acc_t(0);
        });
      });
    });
    grad_in[i] = static_cast<scalar_t>(acc);
  }
};

// out[e] = source[the input element that won window e].  An argmax entry
// that names no in-bounds tap of its window (an empty window's, or a foreign
// argmax's) is never used as an address: nothing flows, out[e] = 0, as on
// the CPU.
template <bool CL, typename scalar_t, typename index_t>
struct MaxPoolGather {
  using index_type = index_t;
  Geometry g;
  const scalar_t* source;
  const void* argmax;
  int argmax_width;
  scalar_t* out;

  C10_HOST_DEVICE void operator()(index_t e) const {
    const Pos<CL, index_t> o(e, g.C, g.dim[0].out, g.dim[1].out, g.dim[2].out);
    const int64_t t = load_tap(argmax, argmax_width, e);
    if (!g.tap_in_bounds(o.d, o.h, o.w, t)) {
      out[e] = scalar_t(0);
      return;
    }
    const int64_t ip = g.plane_index(o.d, o.h, o.w, t);
    out[e] = source[origin<CL>(o.base, o.c, g.in_plane(), g.C) + ip * step<CL>(g.C)];
  }
};

// Average pooling forward, one output element: sums the in-bounds elements
// in row-major order and divides by Geometry::avg_divisor.
template <bool CL, typename scalar_t, typename index_t>
struct AvgPoolForward {
  using index_type = index_t;
  Geometry g;
  const scalar_t* in;
  scalar_t* out;
  bool count_include_pad;
  int64_t divisor_override;  // 0: none

  C10_HOST_DEVICE void operator()(index_t e) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> o(e, g.C, D.out, H.out, W.out);
    const scalar_t* src = in + origin<CL>(o.base, o.c, g.in_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    const int64_t id0 = D.avg_lo(o.d), id1 = D.avg_hi(o.d);
    const int64_t ih0 = H.avg_lo(o.h), ih1 = H.avg_hi(o.h);
    const int64_t iw0 = W.avg_lo(o.w), iw1 = W.avg_hi(o.w);
    // Starts from +0 as the CPU kernels and torch do (so a window of -0.0
    // sums to +0.0 on every device).
    acc_t sum = acc_t(0);
    for (int64_t id = id0; id < id1; ++id) {
      for (int64_t ih = ih0; ih < ih1; ++ih) {
        const int64_t row = (id * H.in + ih) * W.in;
        for (int64_t iw = iw0; iw < iw1; ++iw) {
          sum += static_cast<acc_t>(src[(row + iw) * st]);
        }
      }
    }
    const int64_t div = g.avg_divisor(o.d, o.h, o.w, count_include_pad, divisor_override);
    out[e] = static_cast<scalar_t>(sum / static_cast<acc_t>(div));
  }
};

// Average pooling backward, one input element: sums grad_output / divisor
// over the windows that cover it, in increasing output order.
template <bool CL, typename scalar_t, typename index_t>
struct AvgPoolBackward {
  using index_type = index_t;
  Geometry g;
  const scalar_t* grad_out;
  scalar_t* grad_in;
  bool count_include_pad;
  int64_t divisor_override;  // 0: none

  C10_HOST_DEVICE void operator()(index_t i) const {
    using acc_t = at::opmath_type<scalar_t>;
    // Average pooling has no dilation: with d a known 1 the compiler drops
    // for_each_cover's dilated path (less code, no register spills).
    Dim D = g.dim[0], H = g.dim[1], W = g.dim[2];
    D.d = H.d = W.d = 1;
    const Pos<CL, index_t> p(i, g.C, D.in, H.in, W.in);
    const int64_t o0 = origin<CL>(p.base, p.c, g.out_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t acc = 0;
    D.for_each_cover(p.d, [&](int64_t od, int64_t) {
      H.for_each_cover(p.h, [&](int64_t oh, int64_t) {
        const int64_t orow = (od * H.out + oh) * W.out;
        W.for_each_cover(p.w, [&](int64_t ow, int64_t) {
          const acc_t div = static_cast<acc_t>(
              g.avg_divisor(od, oh, ow, count_include_pad, divisor_override));
          acc += static_cast<acc_t>(grad_out[o0 + (orow + ow) * st]) / div;
        });
      });
    });
    grad_in[i] = static_cast<scalar_t>(acc);
  }
};


// ---------------------------------------------------------------------------
// The int32 fast path: undilated windows on tensors whose every index and
// coordinate fits in int32 (impl.h decides).  Same visiting orders and
// update rules as the generic functors above, so the results are the same
// bits; what changes is the cost per element: 32-bit arithmetic only, and
// the flat-index decomposition and the stride divisions done with a
// multiply-high and a shift instead of a division.
// ---------------------------------------------------------------------------

// n / d for 0 <= n < 2^31 and a fixed divisor 1 <= d < 2^31, as
// (mulhi(n, m) + n) >> s with s = ceil(log2 d), m = floor(2^32 (2^s - d) / d) + 1
// (division by invariant integers using multiplication, Granlund-Montgomery).
struct FastDiv {
  int32_t d = 1;
  uint32_t m = 1;
  uint32_t s = 0;

  FastDiv() = default;
  explicit FastDiv(int64_t divisor) : d(static_cast<int32_t>(divisor)) {
    s = 0;
    while ((uint64_t{1} << s) < static_cast<uint64_t>(divisor)) ++s;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << s) - divisor)) /
                                  static_cast<uint64_t>(divisor) + 1);
  }
  C10_HOST_DEVICE int32_t div(int32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(static_cast<uint32_t>(n), m);
#else
    const uint32_t hi =
        static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(n)) * m) >> 32);
#endif
    return static_cast<int32_t>((hi + static_cast<uint32_t>(n)) >> s);
  }
};

// One spatial dim of an undilated problem in int32, with the rules of
// geometry.h's DimRules (start and the avg_* bounds, in 32-bit arithmetic),
// the dividers of this path and the range of outputs that cover an input
// coordinate.  No dilation member (the path takes none) and no members in a
// base: in trials, each changed the registers ptxas -v reports for about 20
// of the 163 max pooling kernels (the contiguous float max backward from 32
// to 40, or to 64 with both); with this layout they report what they did
// before (benchmarks/results/ptxas-sm90-2026-12-07/).
struct Dim32 : DimRules<int32_t, Dim32> {
  int32_t in, out, k, s, p;
  FastDiv in_div, out_div, s_div;

  Dim32() = default;
  explicit Dim32(const Dim& a)
      : in(static_cast<int32_t>(a.in)), out(static_cast<int32_t>(a.out)),
        k(static_cast<int32_t>(a.k)), s(static_cast<int32_t>(a.s)),
        p(static_cast<int32_t>(a.p)), in_div(a.in), out_div(a.out), s_div(a.s) {}

  // Outputs o in [lo, hi] whose window covers input coordinate i, from
  // x = i + p = q*s + r: o <= q, and x - o*s <= k - 1 <=> o >= q - (k-1-r)/s.
  C10_HOST_DEVICE void covers(int32_t i, int32_t& lo, int32_t& hi) const {
    const int32_t x = i + p;
    const int32_t q = s_div.div(x);
    const int32_t r = x - q * s;
    hi = q < out - 1 ? q : out - 1;
    if (r > k - 1) {
      lo = q + 1;
    } else {
      const int32_t m = q - s_div.div(k - 1 - r);
      lo = m > 0 ? m : 0;
    }
  }
};

struct Geometry32 {
  Dim32 dim[3];  // D, H, W
  int32_t C;
  int32_t in_plane, out_plane;

  Geometry32() = default;
  explicit Geometry32(const Geometry& g)
      : C(static_cast<int32_t>(g.C)), in_plane(static_cast<int32_t>(g.in_plane())),
        out_plane(static_cast<int32_t>(g.out_plane())) {
    for (int a = 0; a < 3; ++a) dim[a] = Dim32(g.dim[a]);
  }

  // Whether a problem may take this path (its element counts are checked by
  // the Runner): no dilation and every coordinate sum below 2^30.
  static bool fits(const Geometry& g) {
    constexpr int64_t kLimit = int64_t{1} << 30;
    if (g.C >= kLimit) return false;
    for (const Dim& a : g.dim) {
      if (a.d != 1 || a.in + 2 * a.p + a.k + a.s >= kLimit || a.out >= kLimit) return false;
    }
    return true;
  }
};

// V consecutive elements, loaded and stored as one access (16 bytes at
// most): channels_last kernels give each thread V consecutive channels.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <int V, typename T>
C10_HOST_DEVICE inline Pack<T, V> load_pack(const T* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Pack<T, V>*>(p);
#else
  Pack<T, V> r;
  for (int l = 0; l < V; ++l) r.v[l] = p[l];
  return r;
#endif
}

template <int V, typename T>
C10_HOST_DEVICE inline void store_pack(T* p, const Pack<T, V>& x) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Pack<T, V>*>(p) = x;
#else
  for (int l = 0; l < V; ++l) p[l] = x.v[l];
#endif
}

// Coordinates of flat work item e (< 2^31).  Contiguous (V = 1): e is an
// element, base its plane (n*C + c).  channels_last: e is a group of V
// channels of one position, base the batch index, c the group's first
// channel; its elements are e*V .. e*V + V - 1.
template <bool CL, int V>
struct Pos32 {
  int32_t base, c, d, h, w;
  C10_HOST_DEVICE Pos32(int32_t e, const FastDiv& groups, const FastDiv& dd, const FastDiv& hd,
                        const FastDiv& wd) {
    c = 0;
    if (CL) {
      const int32_t q = groups.div(e);
      c = (e - q * groups.d) * V;
      e = q;
    }
    int32_t q = wd.div(e);
    w = e - q * wd.d;
    e = q;
    q = hd.div(e);
    h = e - q * hd.d;
    e = q;
    q = dd.div(e);
    d = e - q * dd.d;
    base = q;
  }
};

// The parts every fast functor shares: geometry, channel groups, layout.
template <bool CL, int V>
struct Fast32 {
  static_assert(CL || V == 1, "only channels_last kernels take channel groups");
  using index_type = int32_t;
  // Small register budgets (64 registers at V = 1): more warps in flight to
  // hide memory latency.
  static constexpr int kMinBlocks = V == 1 ? 4 : 3;
  Geometry32 g;
  FastDiv groups;  // C / V channel groups (channels_last)

  Fast32(const Geometry& full) : g(full), groups(CL ? full.C / V : 1) {}

  C10_HOST_DEVICE int32_t step() const { return CL ? g.C : 1; }
  C10_HOST_DEVICE Pos32<CL, V> out_pos(int32_t e) const {
    return Pos32<CL, V>(e, groups, g.dim[0].out_div, g.dim[1].out_div, g.dim[2].out_div);
  }
  C10_HOST_DEVICE Pos32<CL, V> in_pos(int32_t i) const {
    return Pos32<CL, V>(i, groups, g.dim[0].in_div, g.dim[1].in_div, g.dim[2].in_div);
  }
  // Offset of (base, c) at spatial position 0 of a tensor with `plane` positions.
  C10_HOST_DEVICE int32_t origin(const Pos32<CL, V>& q, int32_t plane) const {
    return CL ? q.base * plane * g.C + q.c : q.base * plane;
  }
};

template <bool CL, typename scalar_t, int V = 1>
struct MaxPoolForward32 : Fast32<CL, V> {
  Geometry full;      // for the int64 plane indices
  const scalar_t* in;
  scalar_t* out;
  void* argmax;
  int argmax_width;
  int64_t* indices;

  MaxPoolForward32(const Geometry& g, const scalar_t* in, scalar_t* out, void* argmax,
                   int argmax_width, int64_t* indices)
      : Fast32<CL, V>(g), full(g), in(in), out(out), argmax(argmax),
        argmax_width(argmax_width), indices(indices) {}

  C10_HOST_DEVICE void operator()(int32_t e) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Geometry32& g = this->g;
    const Dim32 &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const auto o = this->out_pos(e);
    const int32_t st = this->step();
    const scalar_t* src = in + this->origin(o, g.in_plane);
    const int32_t sd = D.start(o.d), sh = H.start(o.h), sw = W.start(o.w);
    const int32_t d0 = D.avg_lo(o.d), d1 = D.avg_hi(o.d);
    const int32_t h0 = H.avg_lo(o.h), h1 = H.avg_hi(o.h);
    const int32_t w0 = W.avg_lo(o.w), w1 = W.avg_hi(o.w);
    acc_t best[V];
    int32_t best_tap[V];
    for (int l = 0; l < V; ++l) {
      best[l] = lowest<acc_t>();
      best_tap[l] = ((d0 - sd) * H.k + (h0 - sh)) * W.k + (w0 - sw);
    }
    for (int32_t id = d0; id < d1; ++id) {
      for (int32_t ih = h0; ih < h1; ++ih) {
        const scalar_t* row = src + (id * H.in + ih) * W.in * st;
        const int32_t trow = ((id - sd) * H.k + (ih - sh)) * W.k - sw;
        for (int32_t iw = w0; iw < w1; ++iw) {
          const Pack<scalar_t, V> x = load_pack<V>(row + iw * st);
          for (int l = 0; l < V; ++l) {
            const acc_t v = static_cast<acc_t>(x.v[l]);
            if (max_takes(v, best[l])) {
              best[l] = v;
              best_tap[l] = trow + iw;
            }
          }
        }
      }
    }
    const int32_t first = CL ? e * V : e;
    Pack<scalar_t, V> y;
    for (int l = 0; l < V; ++l) y.v[l] = static_cast<scalar_t>(best[l]);
    store_pack<V>(out + first, y);
    for (int l = 0; l < V; ++l) {
      store_tap(argmax, argmax_width, first + l, best_tap[l]);
      if (indices != nullptr) indices[first + l] = full.plane_index(o.d, o.h, o.w, best_tap[l]);
    }
  }
};

template <bool CL, typename scalar_t, typename arg_t, int V = 1>
struct MaxPoolBackward32 : Fast32<CL, V> {
  const scalar_t* grad_out;
  const arg_t* argmax;
  scalar_t* grad_in;

  MaxPoolBackward32(const Geometry& g, const scalar_t* grad_out, const arg_t* argmax,
                    scalar_t* grad_in)
      : Fast32<CL, V>(g), grad_out(grad_out), argmax(argmax), grad_in(grad_in) {}

  C10_HOST_DEVICE void operator()(int32_t i) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Geometry32& g = this->g;
    const Dim32 &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const auto p = this->in_pos(i);
    const int32_t st = this->step();
    const int32_t o0 = this->origin(p, g.out_plane);
    int32_t d0, d1, h0, h1, w0, w1;
    D.covers(p.d, d0, d1);
    H.covers(p.h, h0, h1);
    W.covers(p.w, w0, w1);
    const int32_t xd = p.d + D.p, xh = p.h + H.p, xw = p.w + W.p;
    acc_t acc[V];
    for (int l = 0; l < V; ++l) acc[l] = acc_t(0);
    for (int32_t od = d0; od <= d1; ++od) {
      for (int32_t oh = h0; oh <= h1; ++oh) {
        const int32_t orow = o0 + (od * H.out + oh) * W.out * st;
        const int32_t trow = ((xd - od * D.s) * H.k + (xh - oh * H.s)) * W.k + xw;
        for (int32_t ow = w0; ow <= w1; ++ow) {
          const int32_t o = orow + ow * st;
          const int32_t tap = trow - ow * W.s;
          const Pack<arg_t, V> a = load_pack<V>(argmax + o);
          const Pack<scalar_t, V> gy = load_pack<V>(grad_out + o);
          // Adds 0 when the window chose another tap, as the CPU kernel does.
          for (int l = 0; l < V; ++l) {
            acc[l] += static_cast<int32_t>(a.v[l]) == tap ? static_cast<acc_t>(gy.v[l])
                                                           : acc_t(0);
          }
        }
      }
    }
    Pack<scalar_t, V> r;
    for (int l = 0; l < V; ++l) r.v[l] = static_cast<scalar_t>(acc[l]);
    store_pack<V>(grad_in + (CL ? i * V : i), r);
  }
};

// Windows that tile the input (kernel == stride, no padding): each input
// element lies in at most one window, so the backward runs window-major, one
// work item per output window (a group of V channels of it in channels_last).
// The item reads its gradient and argmax once and writes every input element
// of its window: the gradient at the argmax tap, 0 elsewhere.  The last
// window of a dim also writes the input's uncovered tail there ([out*s, in),
// floor mode), so the writes partition the input and each element is written
// once, with no read of it.
inline bool tiles(const Geometry& g) {
  for (const Dim& a : g.dim) {
    if (a.k != a.s || a.p != 0 || a.d != 1) return false;
  }
  return true;
}

template <bool CL, typename scalar_t, typename arg_t, int V = 1>
struct MaxPoolBackwardTiled32 : Fast32<CL, V> {
  const scalar_t* grad_out;
  const arg_t* argmax;
  scalar_t* grad_in;

  MaxPoolBackwardTiled32(const Geometry& g, const scalar_t* grad_out, const arg_t* argmax,
                         scalar_t* grad_in)
      : Fast32<CL, V>(g), grad_out(grad_out), argmax(argmax), grad_in(grad_in) {}

  // Input coordinates [lo, hi) written by window o of dim a.
  C10_HOST_DEVICE static void span(const Dim32& a, int32_t o, int32_t& lo, int32_t& hi) {
    lo = o * a.s;
    hi = o == a.out - 1 ? a.in : (lo + a.k < a.in ? lo + a.k : a.in);
  }

  C10_HOST_DEVICE void operator()(int32_t e) const {
    const Geometry32& g = this->g;
    const Dim32 &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const auto o = this->out_pos(e);
    const int32_t st = this->step();
    const int32_t oi = this->origin(o, g.out_plane) +
                       ((o.d * H.out + o.h) * W.out + o.w) * st;
    const Pack<arg_t, V> a = load_pack<V>(argmax + oi);
    const Pack<scalar_t, V> gy = load_pack<V>(grad_out + oi);
    int32_t d0, d1, h0, h1, w0, w1;
    span(D, o.d, d0, d1);
    span(H, o.h, h0, h1);
    span(W, o.w, w0, w1);
    // 0 + gradient, as the gather and the CPU kernels form it (a -0 gradient gives +0).
    using acc_t = at::opmath_type<scalar_t>;
    Pack<scalar_t, V> won, zero;
    for (int l = 0; l < V; ++l) {
      won.v[l] = static_cast<scalar_t>(acc_t(0) + static_cast<acc_t>(gy.v[l]));
      zero.v[l] = scalar_t(0);
    }
    scalar_t* dst = grad_in + this->origin(o, g.in_plane);
    for (int32_t id = d0; id < d1; ++id) {
      const int32_t jd = id - d0;
      for (int32_t ih = h0; ih < h1; ++ih) {
        const int32_t jh = ih - h0;
        scalar_t* row = dst + (id * H.in + ih) * W.in * st;
        const bool row_in_kernel = jd < D.k && jh < H.k;  // else the tail: no tap
        const int32_t trow = (jd * H.k + jh) * W.k;
        for (int32_t iw = w0; iw < w1; ++iw) {
          const int32_t jw = iw - w0;
          const bool in_kernel = row_in_kernel && jw < W.k;
          Pack<scalar_t, V> r;
          for (int l = 0; l < V; ++l) {
            r.v[l] = in_kernel && static_cast<int32_t>(a.v[l]) == trow + jw ? won.v[l]
                                                                             : zero.v[l];
          }
          store_pack<V>(row + iw * st, r);
        }
      }
    }
  }
};

template <bool CL, typename scalar_t, int V = 1>
struct AvgPoolForward32 : Fast32<CL, V> {
  const scalar_t* in;
  scalar_t* out;
  bool count_include_pad;
  int64_t divisor_override;  // 0: none

  AvgPoolForward32(const Geometry& g, const scalar_t* in, scalar_t* out, bool count_include_pad,
                   int64_t divisor_override)
      : Fast32<CL, V>(g), in(in), out(out), count_include_pad(count_include_pad),
        divisor_override(divisor_override) {}

  C10_HOST_DEVICE void operator()(int32_t e) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Geometry32& g = this->g;
    const Dim32 &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const auto o = this->out_pos(e);
    const int32_t st = this->step();
    const scalar_t* src = in + this->origin(o, g.in_plane);
    const int32_t d0 = D.avg_lo(o.d), d1 = D.avg_hi(o.d);
    const int32_t h0 = H.avg_lo(o.h), h1 = H.avg_hi(o.h);
    const int32_t w0 = W.avg_lo(o.w), w1 = W.avg_hi(o.w);
    acc_t sum[V];
    for (int l = 0; l < V; ++l) sum[l] = acc_t(0);
    for (int32_t id = d0; id < d1; ++id) {
      for (int32_t ih = h0; ih < h1; ++ih) {
        const scalar_t* row = src + (id * H.in + ih) * W.in * st;
        for (int32_t iw = w0; iw < w1; ++iw) {
          const Pack<scalar_t, V> x = load_pack<V>(row + iw * st);
          for (int l = 0; l < V; ++l) sum[l] += static_cast<acc_t>(x.v[l]);
        }
      }
    }
    int64_t div = divisor_override;
    if (div == 0) {
      div = count_include_pad
                ? D.avg_pool_size(o.d) * H.avg_pool_size(o.h) * W.avg_pool_size(o.w)
                : (d1 - d0) * (h1 - h0) * (w1 - w0);
    }
    Pack<scalar_t, V> y;
    for (int l = 0; l < V; ++l) y.v[l] = static_cast<scalar_t>(sum[l] / static_cast<acc_t>(div));
    store_pack<V>(out + (CL ? e * V : e), y);
  }
};

template <bool CL, typename scalar_t, int V = 1>
struct AvgPoolBackward32 : Fast32<CL, V> {
  const scalar_t* grad_out;
  scalar_t* grad_in;
  bool count_include_pad;
  int64_t divisor_override;  // 0: none

  AvgPoolBackward32(const Geometry& g, const scalar_t* grad_out, scalar_t* grad_in,
                    bool count_include_pad, int64_t divisor_override)
      : Fast32<CL, V>(g), grad_out(grad_out), grad_in(grad_in),
        count_include_pad(count_include_pad), divisor_override(divisor_override) {}

  // Divisor factor of window o along one dim.
  C10_HOST_DEVICE int32_t factor(const Dim32& a, int32_t o) const {
    return count_include_pad ? a.avg_pool_size(o) : a.avg_hi(o) - a.avg_lo(o);
  }

  C10_HOST_DEVICE void operator()(int32_t i) const {
    using acc_t = at::opmath_type<scalar_t>;
    const Geometry32& g = this->g;
    const Dim32 &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const auto p = this->in_pos(i);
    const int32_t st = this->step();
    const int32_t o0 = this->origin(p, g.out_plane);
    int32_t d0, d1, h0, h1, w0, w1;
    D.covers(p.d, d0, d1);
    H.covers(p.h, h0, h1);
    W.covers(p.w, w0, w1);
    acc_t acc[V];
    for (int l = 0; l < V; ++l) acc[l] = acc_t(0);
    for (int32_t od = d0; od <= d1; ++od) {
      const int32_t fd = factor(D, od);
      for (int32_t oh = h0; oh <= h1; ++oh) {
        const int32_t fdh = fd * factor(H, oh);
        const int32_t orow = o0 + (od * H.out + oh) * W.out * st;
        for (int32_t ow = w0; ow <= w1; ++ow) {
          const acc_t div = static_cast<acc_t>(
              divisor_override != 0 ? divisor_override : int64_t{fdh} * factor(W, ow));
          const Pack<scalar_t, V> gy = load_pack<V>(grad_out + orow + ow * st);
          for (int l = 0; l < V; ++l) acc[l] += static_cast<acc_t>(gy.v[l]) / div;
        }
      }
    }
    Pack<scalar_t, V> r;
    for (int l = 0; l < V; ++l) r.v[l] = static_cast<scalar_t>(acc[l]);
    store_pack<V>(grad_in + (CL ? i * V : i), r);
  }
};

}  // namespace cuda
}  // namespace poolext
