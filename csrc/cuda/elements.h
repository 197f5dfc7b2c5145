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
// Layouts: contiguous data is N*C planes of D*H*W; channels_last data is
// N x D x H x W x C, so consecutive threads take consecutive channels and
// their loads and stores coalesce.  index_t (int32 or int64) is only used for
// the flat index and its decomposition; offsets are computed in int64.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

#include <cstdint>

#include "../geometry.h"

namespace poolext {
namespace cuda {

// Coordinates of flat element e of a tensor with spatial sizes (D, H, W).
// Contiguous: base = plane (n*C + c), c = 0.  channels_last: base = n.
template <bool CL, typename index_t>
struct Pos {
  index_t base, c, d, h, w;
  C10_HOST_DEVICE Pos(index_t e, int64_t C, int64_t D, int64_t H, int64_t W) {
    if (CL) {
      c = e % static_cast<index_t>(C);
      e /= static_cast<index_t>(C);
    } else {
      c = 0;
    }
    w = e % static_cast<index_t>(W);
    e /= static_cast<index_t>(W);
    h = e % static_cast<index_t>(H);
    e /= static_cast<index_t>(H);
    d = e % static_cast<index_t>(D);
    base = e / static_cast<index_t>(D);
  }
};

// Offset of element (base, c) at flat spatial position 0 of a tensor whose
// planes hold `plane` positions; position sp is then at + sp * step<CL>(C).
template <bool CL>
C10_HOST_DEVICE inline int64_t origin(int64_t base, int64_t c, int64_t plane, int64_t C) {
  return CL ? base * plane * C + c : base * plane;
}
template <bool CL>
C10_HOST_DEVICE inline int64_t step(int64_t C) {
  return CL ? C : 1;
}

// Stores tap t at argmax[e] in the argmax dtype's width (argmax_dtype():
// 1 = uint8, 2 = int16 read as uint16, 4 = int32); width 0 stores nothing.
// A run-time width (uniform across the grid) keeps the number of kernels
// down where the argmax is not on the hot path.
C10_HOST_DEVICE inline void store_tap(void* argmax, int width, int64_t e, int64_t t) {
  switch (width) {
    case 1: static_cast<uint8_t*>(argmax)[e] = static_cast<uint8_t>(t); break;
    case 2: static_cast<uint16_t*>(argmax)[e] = static_cast<uint16_t>(t); break;
    case 4: static_cast<int32_t*>(argmax)[e] = static_cast<int32_t>(t); break;
    default: break;
  }
}
C10_HOST_DEVICE inline int64_t load_tap(const void* argmax, int width, int64_t e) {
  switch (width) {
    case 1: return static_cast<const uint8_t*>(argmax)[e];
    case 2: return static_cast<const uint16_t*>(argmax)[e];
    default: return static_cast<const int32_t*>(argmax)[e];
  }
}

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

}  // namespace cuda
}  // namespace poolext
