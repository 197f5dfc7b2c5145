// The one pooling geometry shared by every rank, op and device.
//
// 1d and 2d pooling are 3d pooling with size-1 leading spatial dims (kernel 1,
// stride 1, padding 0, dilation 1 there), so every rule below is written once
// and used by the CPU kernels and the CUDA kernels alike.
#pragma once

#include <c10/macros/Macros.h>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace poolext {

// Floor and ceiling of a / b for b > 0, in the integer type I of the
// operands.  Both divide non-negative numbers only: a GPU divides 64-bit
// integers inline when both operands are non-negative and below 2^32 (as
// pooling's nearly always are) but calls a slow routine for a negative one.
template <typename I>
C10_HOST_DEVICE inline I div_floor(I a, I b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

template <typename I>
C10_HOST_DEVICE inline I div_ceil(I a, I b) {
  return a >= 0 ? (a + b - 1) / b : -(-a / b);
}

template <typename I>
C10_HOST_DEVICE inline I imin(I a, I b) { return a < b ? a : b; }
template <typename I>
C10_HOST_DEVICE inline I imax(I a, I b) { return a > b ? a : b; }

// Output length of one spatial dim: section 2 of DESIGN.md.
C10_HOST_DEVICE inline int64_t pooled_size(int64_t L, int64_t k, int64_t s, int64_t p,
                                           int64_t d, bool ceil_mode) {
  int64_t out = div_floor(L + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= L + p) {
    --out;
  }
  return out;
}

// The window rules that take no dilation (a window's start, and average
// pooling's bounds and pool size), written once for every dim type Self that
// holds `in, out, k, s, p` of integer type I: Dim (int64, every op on both
// devices) and Dim32 (int32, the CUDA fast path of cuda/elements.h).  A base
// without members, so that Self keeps a plain layout of its own.
template <typename I, typename Self>
struct DimRules {
  C10_HOST_DEVICE const Self& self() const { return static_cast<const Self&>(*this); }

  // First input coordinate of window o (may be negative: padding).
  C10_HOST_DEVICE I start(I o) const { return o * self().s - self().p; }

  // Average pooling (dilation 1): [lo, hi) of window o clipped to the input,
  // and the size of the window clipped to the padded input [-p, in + p).
  C10_HOST_DEVICE I avg_lo(I o) const { return imax(start(o), I(0)); }
  C10_HOST_DEVICE I avg_hi(I o) const { return imin(I(start(o) + self().k), self().in); }
  C10_HOST_DEVICE I avg_pool_size(I o) const {
    return imin(I(start(o) + self().k), I(self().in + self().p)) - start(o);
  }
};

// One spatial dimension of a pooling problem, with the rules above and those
// that take dilation: max pooling's taps, and the covers that every backward
// gathers over.  (Brace-initialised as Dim{{}, in, out, k, s, p, d}: the
// first braces are the empty base.)
struct Dim : DimRules<int64_t, Dim> {
  int64_t in;   // input length
  int64_t out;  // output length
  int64_t k;    // kernel
  int64_t s;    // stride
  int64_t p;    // padding
  int64_t d;    // dilation

  // Max pooling: taps j in [lo, hi) of window o fall inside the input.
  // Without dilation every window has at least one; with dilation a window
  // can fall entirely between input elements (lo >= hi): it then yields the
  // lowest value, and reports tap lo (past the input's end, as torch does).
  C10_HOST_DEVICE int64_t tap_lo(int64_t o) const {
    int64_t st = start(o);
    return st < 0 ? div_ceil(-st, d) : 0;
  }
  C10_HOST_DEVICE int64_t tap_hi(int64_t o) const {
    return imin(k, div_ceil(in - start(o), d));
  }

  // Outputs whose window covers input coordinate i: i == o*s - p + j*d.
  // Visits (o, j) in increasing o, i.e. decreasing j.
  template <typename F>
  C10_HOST_DEVICE void for_each_cover(int64_t i, F&& f) const {
    if (d == 1) {
      // o in [ceil((i + p - k + 1) / s), floor((i + p) / s)]
      int64_t o_lo = imax(div_ceil(i + p - k + 1, s), int64_t{0});
      int64_t o_hi = imin(div_floor(i + p, s), out - 1);
      for (int64_t o = o_lo; o <= o_hi; ++o) {
        f(o, i + p - o * s);
      }
    } else {
      for (int64_t j = k - 1; j >= 0; --j) {
        int64_t t = i + p - j * d;
        if (t < 0) continue;
        if (t % s != 0) continue;
        int64_t o = t / s;
        if (o >= out) break;
        f(o, j);
      }
    }
  }
};

// A whole problem: planes (N*C, or N for channels_last with C inner) times
// three spatial dims.
struct Geometry {
  Dim dim[3];  // D, H, W
  int64_t N;   // batch
  int64_t C;   // channels

  C10_HOST_DEVICE int64_t kernel_volume() const { return dim[0].k * dim[1].k * dim[2].k; }
  C10_HOST_DEVICE int64_t in_plane() const { return dim[0].in * dim[1].in * dim[2].in; }
  C10_HOST_DEVICE int64_t out_plane() const { return dim[0].out * dim[1].out * dim[2].out; }
  // Flat tap index of (jd, jh, jw) inside the window, row-major.
  C10_HOST_DEVICE int64_t tap(int64_t jd, int64_t jh, int64_t jw) const {
    return (jd * dim[1].k + jh) * dim[2].k + jw;
  }
  // Torch-style plane index of tap `t` of output (od, oh, ow).
  C10_HOST_DEVICE int64_t plane_index(int64_t od, int64_t oh, int64_t ow, int64_t t) const {
    int64_t jw = t % dim[2].k;
    int64_t r = t / dim[2].k;
    int64_t jh = r % dim[1].k;
    int64_t jd = r / dim[1].k;
    int64_t id = dim[0].start(od) + jd * dim[0].d;
    int64_t ih = dim[1].start(oh) + jh * dim[1].d;
    int64_t iw = dim[2].start(ow) + jw * dim[2].d;
    return (id * dim[1].in + ih) * dim[2].in + iw;
  }
  // The first in-bounds tap of a window in scan order: where a max window
  // starts, and the tap an empty window reports (the first at or after 0 in
  // each dim).
  C10_HOST_DEVICE int64_t first_tap(int64_t od, int64_t oh, int64_t ow) const {
    return tap(dim[0].tap_lo(od), dim[1].tap_lo(oh), dim[2].tap_lo(ow));
  }
  // Whether tap `t` of output (od, oh, ow) is an in-bounds input element
  // (guards reads driven by an argmax tensor from outside).
  C10_HOST_DEVICE bool tap_in_bounds(int64_t od, int64_t oh, int64_t ow, int64_t t) const {
    if (t < 0 || t >= kernel_volume()) return false;
    int64_t jw = t % dim[2].k;
    int64_t r = t / dim[2].k;
    int64_t jh = r % dim[1].k;
    int64_t jd = r / dim[1].k;
    return jd >= dim[0].tap_lo(od) && jd < dim[0].tap_hi(od) && jh >= dim[1].tap_lo(oh) &&
           jh < dim[1].tap_hi(oh) && jw >= dim[2].tap_lo(ow) && jw < dim[2].tap_hi(ow);
  }
  // Divisor of average window (od, oh, ow).
  C10_HOST_DEVICE int64_t avg_divisor(int64_t od, int64_t oh, int64_t ow,
                                      bool count_include_pad, int64_t divisor_override) const {
    if (divisor_override != 0) return divisor_override;
    if (count_include_pad) {
      return dim[0].avg_pool_size(od) * dim[1].avg_pool_size(oh) * dim[2].avg_pool_size(ow);
    }
    return (dim[0].avg_hi(od) - dim[0].avg_lo(od)) * (dim[1].avg_hi(oh) - dim[1].avg_lo(oh)) *
           (dim[2].avg_hi(ow) - dim[2].avg_lo(ow));
  }
};

// Max pooling's update rule: take v when v > best or v is NaN.  Ties keep the
// first maximum; the last NaN in scan order wins.
template <typename acc_t>
C10_HOST_DEVICE inline bool max_takes(acc_t v, acc_t best) {
  if constexpr (std::is_floating_point<acc_t>::value) {
    return v > best || v != v;
  } else {
    return v > best;
  }
}

// Lowest value for max initialisation.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t lowest() {
  if constexpr (std::is_floating_point<acc_t>::value) {
    return -INFINITY;
  } else {
    return std::numeric_limits<acc_t>::lowest();
  }
}

}  // namespace poolext
