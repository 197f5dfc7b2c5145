// Fractional max pooling: the window rule and the per-element bodies, host
// and device code alike.
//
// Each (n, c) plane draws one sample u per spatial dim (torch's
// _random_samples, shape (N, C, rank): 2d reads u[0] for W and u[1] for H,
// 3d reads u[0] for T, u[1] for H and u[2] for W).  Output o of a dim of
// input size L, output size S and kernel k covers [start(o), start(o) + k)
// with
//     alpha    = (L - k) / (S - 1)
//     start(o) = int((o + u) * alpha) - int(u * alpha)     for o < S - 1
//     start(S - 1) = L - k
// computed in the type torch computes it in: on the CPU the input's own type
// (so float16/bfloat16 round after every operation, as c10::Half arithmetic
// does), on CUDA its accumulate type.  int() truncates as x86's cvttss2si
// does (NaN and values outside int32 give INT32_MIN) and the difference wraps
// in int32, so odd samples give torch's CPU windows too.
//
// The starts of every plane are computed once per op into a table (starts:
// N*C rows of D.out + H.out + W.out entries); for u in [0, 1) they are
// non-decreasing in o and inside [0, L - k].  The CPU op refuses a table that
// leaves the input (torch's CPU kernel asserts) or runs backwards (which
// torch would accept; the gather below relies on the order); the CUDA op
// clamps each start into [0, L - k], so no sample ever reads out of bounds.
//
// Backward is a gather, as for the other ops: input x of a dim is covered by
// the outputs [lo(x), hi(x)) with lo = the first o whose window ends past x
// and hi = the first o starting past x; a second table (cover) holds both
// for every plane, dim and x, found by binary search in the starts.  Each
// grad_input element sums grad_output over the covering windows that chose
// it, in increasing output order: the order of torch's CPU backward's adds.
//
// Output and argmax are always contiguous (torch's layout, channels_last
// input included); the input (forward, gather) and grad_input (backward) are
// read or written in either layout.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>

#include <cstdint>

#include "elements.h"
#include "geometry.h"

namespace poolext {

struct FractionalDim {
  int64_t in = 1, out = 1, k = 1;
};

struct FractionalGeometry {
  int64_t N = 1, C = 1;
  int rank = 2;
  FractionalDim dim[3];  // (D, H, W); 2d has a leading dim of size 1

  C10_HOST_DEVICE int64_t in_plane() const { return dim[0].in * dim[1].in * dim[2].in; }
  C10_HOST_DEVICE int64_t out_plane() const { return dim[0].out * dim[1].out * dim[2].out; }
  C10_HOST_DEVICE int64_t kernel_volume() const { return dim[0].k * dim[1].k * dim[2].k; }
  // Row lengths of the two tables, and where each dim's part of a row starts.
  C10_HOST_DEVICE int64_t starts_row() const { return dim[0].out + dim[1].out + dim[2].out; }
  C10_HOST_DEVICE int64_t starts_at(int i) const {
    return i == 0 ? 0 : i == 1 ? dim[0].out : dim[0].out + dim[1].out;
  }
  C10_HOST_DEVICE int64_t cover_row() const { return 2 * (dim[0].in + dim[1].in + dim[2].in); }
  C10_HOST_DEVICE int64_t cover_at(int i) const {
    return 2 * (i == 0 ? 0 : i == 1 ? dim[0].in : dim[0].in + dim[1].in);
  }
  // Which sample of a plane's `rank` samples dim i (0 = D, 1 = H, 2 = W) uses.
  C10_HOST_DEVICE int sample_index(int i) const {
    return rank == 3 ? i : (i == 2 ? 0 : 1);
  }
};

namespace fractional {

// Pos of the next flat element (the CPU's range loops step coordinates
// instead of dividing for every element).
template <bool CL, typename index_t>
C10_HOST_DEVICE inline void advance(Pos<CL, index_t>& p, int64_t C, int64_t D, int64_t H,
                                    int64_t W) {
  if (CL) {
    if (++p.c < C) return;
    p.c = 0;
  }
  if (++p.w < W) return;
  p.w = 0;
  if (++p.h < H) return;
  p.h = 0;
  if (++p.d < D) return;
  p.d = 0;
  ++p.base;
}

// operator()(e) for one element (the CUDA runner's call) and range(i0, i1)
// for consecutive ones (the CPU runner's, cpu/fractional.cpp), both through
// Op::at(e, pos) with pos in the functor's iteration layout.
#define POOLEXT_FRACTIONAL_ELEMENTS(CL_, D_, H_, W_)                                   \
  C10_HOST_DEVICE void operator()(index_t e) const {                                  \
    at(e, Pos<CL_, index_t>(e, g.C, D_, H_, W_));                                     \
  }                                                                                   \
  void range(int64_t i0, int64_t i1) const {                                          \
    Pos<CL_, index_t> p(static_cast<index_t>(i0), g.C, D_, H_, W_);                   \
    for (int64_t i = i0; i < i1; ++i) {                                               \
      at(static_cast<index_t>(i), p);                                                 \
      advance(p, g.C, D_, H_, W_);                                                    \
    }                                                                                 \
  }

// int(v) as x86's truncating conversion gives it: NaN and values outside
// int32 give INT32_MIN.
template <typename T>
C10_HOST_DEVICE inline int32_t trunc_int(T v) {
  const double d = static_cast<double>(v);
  if (!(d >= -2147483648.0 && d < 2147483648.0)) return INT32_MIN;
  return static_cast<int32_t>(d);
}

// start(o) of a dim, in torch's arithmetic of type T (see the top).
template <typename T>
C10_HOST_DEVICE inline int64_t interval_start(T u, int64_t o, const FractionalDim& dm) {
  if (o == dm.out - 1) return dm.in - dm.k;
  const T alpha = static_cast<T>(dm.in - dm.k) / static_cast<T>(dm.out - 1);
  const T a = (o + u) * alpha;
  const T b = u * alpha;
  const uint32_t diff =
      static_cast<uint32_t>(trunc_int(a)) - static_cast<uint32_t>(trunc_int(b));
  return static_cast<int32_t>(diff);
}

// The starts table: element e is entry e % row of plane e / row.  interval_t
// is the arithmetic type; clamp puts each start inside [0, L - k].
template <typename scalar_t, typename interval_t>
struct Starts {
  using index_type = int64_t;
  FractionalGeometry g;
  const scalar_t* samples;  // contiguous (N', C, rank), N' >= N
  int64_t* starts;
  bool clamp;

  C10_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t row = g.starts_row();
    const int64_t plane = e / row;
    int64_t j = e % row;
    int i = 0;
    while (i < 2 && j >= g.dim[i].out) {
      j -= g.dim[i].out;
      ++i;
    }
    const FractionalDim& dm = g.dim[i];
    const interval_t u = static_cast<interval_t>(samples[plane * g.rank + g.sample_index(i)]);
    int64_t s = interval_start<interval_t>(u, j, dm);
    if (clamp) s = s < 0 ? 0 : (s > dm.in - dm.k ? dm.in - dm.k : s);
    starts[e] = s;
  }
};

// The cover table: for plane p, dim i and input position x, the outputs
// [lo, hi) whose windows hold x (entries 2x and 2x + 1 of the dim's part).
struct Cover {
  using index_type = int64_t;
  FractionalGeometry g;
  const int64_t* starts;
  int64_t* cover;

  // The first o in [0, out) with s[o] > v (out if none); s is non-decreasing.
  C10_HOST_DEVICE static int64_t first_above(const int64_t* s, int64_t out, int64_t v) {
    int64_t lo = 0, hi = out;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (s[mid] > v) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }

  C10_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t half_row = g.cover_row() / 2;
    const int64_t plane = e / half_row;
    int64_t x = e % half_row;
    int i = 0;
    while (i < 2 && x >= g.dim[i].in) {
      x -= g.dim[i].in;
      ++i;
    }
    const FractionalDim& dm = g.dim[i];
    const int64_t* s = starts + plane * g.starts_row() + g.starts_at(i);
    int64_t* c = cover + plane * g.cover_row() + g.cover_at(i) + 2 * x;
    c[0] = first_above(s, dm.out, x - dm.k);
    c[1] = first_above(s, dm.out, x);
  }
};

// Max forward, one output element (output contiguous): scans its window in
// row-major order with the max_takes rule (ties keep the first, NaN wins,
// the last NaN's index) from -inf, as torch does.  CL: the input's layout.
template <bool CL, typename scalar_t, typename index_t>
struct MaxForward {
  using index_type = index_t;
  FractionalGeometry g;
  const scalar_t* in;
  const int64_t* starts;
  scalar_t* out;
  void* argmax;  // null, or the compact argmax of width argmax_width
  int argmax_width;
  int64_t* indices;  // null, or torch-style int64 plane indices

  POOLEXT_FRACTIONAL_ELEMENTS(false, g.dim[0].out, g.dim[1].out, g.dim[2].out)

  C10_HOST_DEVICE void at(index_t e, const Pos<false, index_t>& o) const {
    using acc_t = at::opmath_type<scalar_t>;
    const FractionalDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const int64_t plane = o.base;
    const int64_t* st = starts + plane * g.starts_row();
    const int64_t s0 = st[o.d], s1 = st[D.out + o.h], s2 = st[D.out + H.out + o.w];
    const scalar_t* src =
        in + origin<CL>(CL ? plane / g.C : plane, CL ? plane % g.C : 0, g.in_plane(), g.C);
    const int64_t step_in = step<CL>(g.C);
    acc_t best = lowest<acc_t>();
    int64_t best_pos = (s0 * H.in + s1) * W.in + s2;
    int64_t best_tap = 0, tap = 0;
    for (int64_t d = s0; d < s0 + D.k; ++d) {
      for (int64_t h = s1; h < s1 + H.k; ++h) {
        const int64_t row = (d * H.in + h) * W.in;
        for (int64_t w = s2; w < s2 + W.k; ++w, ++tap) {
          const acc_t v = static_cast<acc_t>(src[(row + w) * step_in]);
          if (max_takes(v, best)) {
            best = v;
            best_pos = row + w;
            best_tap = tap;
          }
        }
      }
    }
    out[e] = static_cast<scalar_t>(best);
    if (argmax != nullptr) store_tap(argmax, argmax_width, e, best_tap);
    if (indices != nullptr) indices[e] = best_pos;
  }
};

// Max backward, one grad_input element (layout CL): sums grad_output over
// the windows that cover it and chose it, in increasing output order.
template <bool CL, typename scalar_t, typename index_t>
struct MaxBackward {
  using index_type = index_t;
  FractionalGeometry g;
  const scalar_t* grad_out;  // contiguous
  const void* argmax;        // contiguous
  int argmax_width;
  const int64_t* starts;
  const int64_t* cover;
  scalar_t* grad_in;

  POOLEXT_FRACTIONAL_ELEMENTS(CL, g.dim[0].in, g.dim[1].in, g.dim[2].in)

  C10_HOST_DEVICE void at(index_t i, const Pos<CL, index_t>& p) const {
    using acc_t = at::opmath_type<scalar_t>;
    const FractionalDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const int64_t plane = CL ? static_cast<int64_t>(p.base) * g.C + p.c : p.base;
    const int64_t* st = starts + plane * g.starts_row();
    const int64_t* cv = cover + plane * g.cover_row();
    const int64_t* c0 = cv + g.cover_at(0) + 2 * p.d;
    const int64_t* c1 = cv + g.cover_at(1) + 2 * p.h;
    const int64_t* c2 = cv + g.cover_at(2) + 2 * p.w;
    const int64_t o0 = plane * g.out_plane();
    acc_t acc = 0;
    for (int64_t od = c0[0]; od < c0[1]; ++od) {
      const int64_t td = p.d - st[od];
      for (int64_t oh = c1[0]; oh < c1[1]; ++oh) {
        const int64_t th = td * H.k + (p.h - st[D.out + oh]);
        const int64_t orow = o0 + (od * H.out + oh) * W.out;
        for (int64_t ow = c2[0]; ow < c2[1]; ++ow) {
          const int64_t t = th * W.k + (p.w - st[D.out + H.out + ow]);
          if (load_tap(argmax, argmax_width, orow + ow) == t) {
            acc += static_cast<acc_t>(grad_out[orow + ow]);
          }
        }
      }
    }
    grad_in[i] = static_cast<scalar_t>(acc);
  }
};

// out[e] = source[the element that won window e] (out contiguous, source in
// layout CL); an argmax entry past the window (a foreign argmax) is never
// used as an address: out[e] = 0.
template <bool CL, typename scalar_t, typename index_t>
struct MaxGather {
  using index_type = index_t;
  FractionalGeometry g;
  const scalar_t* source;
  const void* argmax;
  int argmax_width;
  const int64_t* starts;
  scalar_t* out;

  POOLEXT_FRACTIONAL_ELEMENTS(false, g.dim[0].out, g.dim[1].out, g.dim[2].out)

  C10_HOST_DEVICE void at(index_t e, const Pos<false, index_t>& o) const {
    const FractionalDim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const int64_t plane = o.base;
    const int64_t t = load_tap(argmax, argmax_width, e);
    if (t < 0 || t >= g.kernel_volume()) {
      out[e] = scalar_t(0);
      return;
    }
    const int64_t* st = starts + plane * g.starts_row();
    const int64_t w = st[D.out + H.out + o.w] + t % W.k;
    const int64_t h = st[D.out + o.h] + (t / W.k) % H.k;
    const int64_t d = st[o.d] + t / (W.k * H.k);
    out[e] = source[origin<CL>(CL ? plane / g.C : plane, CL ? plane % g.C : 0, g.in_plane(), g.C) +
                    ((d * H.in + h) * W.in + w) * step<CL>(g.C)];
  }
};

#undef POOLEXT_FRACTIONAL_ELEMENTS

}  // namespace fractional
}  // namespace poolext
