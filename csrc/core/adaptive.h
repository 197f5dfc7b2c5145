// Adaptive pooling: the window rule and the per-element bodies, host and
// device code alike.
//
// Output o of a dim of input size L and output size S covers the input range
// [start(o), end(o)) with start = floor(o*L/S) and end = ceil((o+1)*L/S), as
// torch's adaptive pooling does.  Windows differ in size by at most one and
// may overlap by one.  Input x is covered by the outputs
// [floor(x*S/L), ceil((x+1)*S/L)), so backward is a gather over them, as for
// the fixed-window ops: no atomics, every grad_input element written once.
//
// The same functors run on both devices: the CPU op runs them under
// at::parallel_for (cpu/adaptive.cpp), the CUDA op in a grid-stride kernel
// (cuda/adaptive.cu).  A problem whose sizes divide evenly never gets here:
// the Python layer sends it to the fixed-window kernels (kernel = stride =
// L/S), which have the fast paths, global pooling included.
//
// The compact argmax of adaptive max pooling is the winner's row-major tap
// index inside its own window, whose extents vary per output; its width is
// chosen by the widest window (max_extent), as for the fixed-window ops.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

#include <cstdint>

#include "elements.h"
#include "geometry.h"

namespace poolext {

struct AdaptiveDim {
  int64_t in = 1, out = 1;

  C10_HOST_DEVICE int64_t start(int64_t o) const { return (o * in) / out; }
  C10_HOST_DEVICE int64_t end(int64_t o) const { return ((o + 1) * in + out - 1) / out; }
  C10_HOST_DEVICE int64_t cover_lo(int64_t x) const { return (x * out) / in; }
  C10_HOST_DEVICE int64_t cover_hi(int64_t x) const { return ((x + 1) * out + in - 1) / in; }
  // An upper bound of end(o) - start(o) over all o (exact when S divides L).
  C10_HOST_DEVICE int64_t max_extent() const {
    return in % out == 0 ? in / out : in / out + 2;
  }
};

struct AdaptiveGeometry {
  int64_t N = 1, C = 1;
  AdaptiveDim dim[3];  // (D, H, W); 1d and 2d have leading dims of size 1

  C10_HOST_DEVICE int64_t in_plane() const { return dim[0].in * dim[1].in * dim[2].in; }
  C10_HOST_DEVICE int64_t out_plane() const { return dim[0].out * dim[1].out * dim[2].out; }
  C10_HOST_DEVICE int64_t max_window() const {
    return dim[0].max_extent() * dim[1].max_extent() * dim[2].max_extent();
  }
};

// One output's window: its start and extent in each dim.
struct AdaptiveWindow {
  int64_t s[3], n[3];
  C10_HOST_DEVICE AdaptiveWindow(const AdaptiveGeometry& g, int64_t od, int64_t oh, int64_t ow) {
    const int64_t o[3] = {od, oh, ow};
    for (int i = 0; i < 3; ++i) {
      s[i] = g.dim[i].start(o[i]);
      n[i] = g.dim[i].end(o[i]) - s[i];
    }
  }
  // Row-major tap index of input position (d, h, w) inside this window.
  C10_HOST_DEVICE int64_t tap(int64_t d, int64_t h, int64_t w) const {
    return ((d - s[0]) * n[1] + (h - s[1])) * n[2] + (w - s[2]);
  }
  C10_HOST_DEVICE int64_t volume() const { return n[0] * n[1] * n[2]; }
};

namespace adaptive {

// Calls f(o, win) for every output o (flat in the plane) whose window covers
// input position (d, h, w), in increasing output order.
template <typename F>
C10_HOST_DEVICE inline void for_each_cover(const AdaptiveGeometry& g, int64_t d, int64_t h,
                                           int64_t w, F&& f) {
  const AdaptiveDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  for (int64_t od = D.cover_lo(d); od < D.cover_hi(d); ++od) {
    for (int64_t oh = H.cover_lo(h); oh < H.cover_hi(h); ++oh) {
      for (int64_t ow = W.cover_lo(w); ow < W.cover_hi(w); ++ow) {
        f((od * H.out + oh) * W.out + ow, AdaptiveWindow(g, od, oh, ow));
      }
    }
  }
}

// Max forward, one output element: scans its window in row-major order with
// the max_takes rule (ties keep the first, NaN wins, the last NaN's index).
template <bool CL, typename scalar_t, typename index_t>
struct MaxForward {
  using index_type = index_t;
  AdaptiveGeometry g;
  const scalar_t* in;
  scalar_t* out;
  void* argmax;  // null, or the compact argmax of width argmax_width
  int argmax_width;
  int64_t* indices;  // null, or torch-style int64 plane indices

  C10_HOST_DEVICE void operator()(index_t e) const {
    using acc_t = at::opmath_type<scalar_t>;
    const AdaptiveDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> o(e, g.C, D.out, H.out, W.out);
    const AdaptiveWindow win(g, o.d, o.h, o.w);
    const scalar_t* src = in + origin<CL>(o.base, o.c, g.in_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t best = lowest<acc_t>();
    int64_t best_pos = (win.s[0] * H.in + win.s[1]) * W.in + win.s[2];
    for (int64_t d = win.s[0]; d < win.s[0] + win.n[0]; ++d) {
      for (int64_t h = win.s[1]; h < win.s[1] + win.n[1]; ++h) {
        const int64_t row = (d * H.in + h) * W.in;
        for (int64_t w = win.s[2]; w < win.s[2] + win.n[2]; ++w) {
          const acc_t v = static_cast<acc_t>(src[(row + w) * st]);
          if (max_takes(v, best)) {
            best = v;
            best_pos = row + w;
          }
        }
      }
    }
    out[e] = static_cast<scalar_t>(best);
    if (argmax != nullptr) {
      const int64_t w = best_pos % W.in, hw = best_pos / W.in;
      store_tap(argmax, argmax_width, e, win.tap(hw / H.in, hw % H.in, w));
    }
    if (indices != nullptr) indices[e] = best_pos;
  }
};

// Max backward, one input element: sums grad_output over the windows that
// cover it and chose it, in increasing output order.
template <bool CL, typename scalar_t, typename index_t>
struct MaxBackward {
  using index_type = index_t;
  AdaptiveGeometry g;
  const scalar_t* grad_out;
  const void* argmax;
  int argmax_width;
  scalar_t* grad_in;

  C10_HOST_DEVICE void operator()(index_t i) const {
    using acc_t = at::opmath_type<scalar_t>;
    const AdaptiveDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> p(i, g.C, D.in, H.in, W.in);
    const int64_t o0 = origin<CL>(p.base, p.c, g.out_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t acc = 0;
    for_each_cover(g, p.d, p.h, p.w, [&](int64_t sp, const AdaptiveWindow& win) {
      const int64_t o = o0 + sp * st;
      if (load_tap(argmax, argmax_width, o) == win.tap(p.d, p.h, p.w)) {
        acc += static_cast<acc_t>(grad_out[o]);
      }
    });
    grad_in[i] = static_cast<scalar_t>(acc);
  }
};

// out[e] = source[the element that won window e]; an argmax entry past its
// window (a foreign argmax) is never used as an address: out[e] = 0.
template <bool CL, typename scalar_t, typename index_t>
struct MaxGather {
  using index_type = index_t;
  AdaptiveGeometry g;
  const scalar_t* source;
  const void* argmax;
  int argmax_width;
  scalar_t* out;

  C10_HOST_DEVICE void operator()(index_t e) const {
    const AdaptiveDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> o(e, g.C, D.out, H.out, W.out);
    const AdaptiveWindow win(g, o.d, o.h, o.w);
    const int64_t t = load_tap(argmax, argmax_width, e);
    if (t < 0 || t >= win.volume()) {
      out[e] = scalar_t(0);
      return;
    }
    const int64_t w = win.s[2] + t % win.n[2];
    const int64_t h = win.s[1] + (t / win.n[2]) % win.n[1];
    const int64_t d = win.s[0] + t / (win.n[2] * win.n[1]);
    out[e] = source[origin<CL>(o.base, o.c, g.in_plane(), g.C) +
                    ((d * H.in + h) * W.in + w) * step<CL>(g.C)];
  }
};

// Avg forward, one output element: the row-major sum of its window, in
// opmath, divided by the window's size.
template <bool CL, typename scalar_t, typename index_t>
struct AvgForward {
  using index_type = index_t;
  AdaptiveGeometry g;
  const scalar_t* in;
  scalar_t* out;

  C10_HOST_DEVICE void operator()(index_t e) const {
    using acc_t = at::opmath_type<scalar_t>;
    const AdaptiveDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> o(e, g.C, D.out, H.out, W.out);
    const AdaptiveWindow win(g, o.d, o.h, o.w);
    const scalar_t* src = in + origin<CL>(o.base, o.c, g.in_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t sum = 0;
    for (int64_t d = win.s[0]; d < win.s[0] + win.n[0]; ++d) {
      for (int64_t h = win.s[1]; h < win.s[1] + win.n[1]; ++h) {
        const int64_t row = (d * H.in + h) * W.in;
        for (int64_t w = win.s[2]; w < win.s[2] + win.n[2]; ++w) {
          sum += static_cast<acc_t>(src[(row + w) * st]);
        }
      }
    }
    out[e] = static_cast<scalar_t>(sum / static_cast<acc_t>(win.volume()));
  }
};

// Avg backward, one input element: sums grad_output / window size over the
// windows that cover it, in increasing output order.
template <bool CL, typename scalar_t, typename index_t>
struct AvgBackward {
  using index_type = index_t;
  AdaptiveGeometry g;
  const scalar_t* grad_out;
  scalar_t* grad_in;

  C10_HOST_DEVICE void operator()(index_t i) const {
    using acc_t = at::opmath_type<scalar_t>;
    const AdaptiveDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> p(i, g.C, D.in, H.in, W.in);
    const int64_t o0 = origin<CL>(p.base, p.c, g.out_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t acc = 0;
    for_each_cover(g, p.d, p.h, p.w, [&](int64_t sp, const AdaptiveWindow& win) {
      acc += static_cast<acc_t>(grad_out[o0 + sp * st]) / static_cast<acc_t>(win.volume());
    });
    grad_in[i] = static_cast<scalar_t>(acc);
  }
};

}  // namespace adaptive
}  // namespace poolext
