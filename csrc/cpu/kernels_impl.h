// CPU kernel bodies, compiled once per instruction set: kernels_base.cpp
// (the baseline x86-64 / any target) and kernels_avx2.cpp (AVX2 + FMA), each
// into its own namespace POOLEXT_CPU_ISA, so the inner loops vectorise as
// wide as the machine allows and kernels.h picks one at run time.
//
// Include only after every header these bodies need (the including file
// lists them before any target pragma).
#ifndef POOLEXT_CPU_ISA
#error "define POOLEXT_CPU_ISA before including kernels_impl.h"
#endif

namespace poolext {
namespace cpu {
namespace POOLEXT_CPU_ISA {

// The engine, one concern a file, in dependency order.  Forward: every
// output folds the in-bounds taps of its window in row-major (d, h, w)
// order.  Backward: every input element gathers from the outputs whose
// window covers it, in increasing output order, or (where that gives the
// same sums in the same order) outputs are walked instead; no atomics, one
// write per element.
#include "engine/lanes.h"             // vector lanes, conversions, loads and stores
#include "engine/reduce.h"            // reduce policies, max steps, shared tables
#include "engine/forward_contig.h"    // contiguous forward
#include "engine/forward_cl.h"        // channels_last forward
#include "engine/backward_gather.h"   // backward gathers (contiguous and channels_last)
#include "engine/backward_scatter.h"  // plane scatter and tiling backwards

// n taps narrowed to the argmax dtype at dst[0], dst[es], ... (restrict: a
// byte store may alias anything else, which would reload t and n each step).
template <typename arg_t>
inline void store_taps(arg_t* __restrict__ dst, const int32_t* __restrict__ t, int64_t n,
                       int64_t es) {
  if (es == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<arg_t>(t[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * es] = static_cast<arg_t>(t[i]);
  }
}

void max_pool_fwd(const at::Tensor& x, at::Tensor& out, at::Tensor& argmax, at::Tensor& indices,
                  const Geometry& g, bool channels_last, bool with_argmax, bool with_indices,
                  bool keep_nan_bits) {
  const auto am_type = argmax_dtype(g.kernel_volume());
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "poolext.max_pool", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    void* am = with_argmax ? argmax.data_ptr() : nullptr;
    int64_t* idx = with_indices ? indices.data_ptr<int64_t>() : nullptr;
    const int64_t OP = g.out_plane(), IP = g.in_plane();
    auto finish = [&](int64_t e, int64_t n, const acc_t* v, const int32_t* t, int64_t od,
                      int64_t oh, int64_t ow, int64_t ow_step, int64_t es) {
      store_n(o + e, v, n, es);
      // A NaN result in a 16-bit type comes out as torch's kernels give it:
      // the winning input element itself on torch's plain 1d path, else
      // the float result narrowed (bfloat16: the canonical NaN, as
      // store_n gives; half: F16C's narrowing, which keeps the payload).
      if constexpr (is_half_type<scalar_t>) {
        if (keep_nan_bits || std::is_same<scalar_t, at::Half>::value) {
          for (int64_t i = 0; i < n; ++i) {
            if (v[i] == v[i]) continue;
            const int64_t ei = e + i * es;
            if (!keep_nan_bits) {
              o[ei] = narrow_nan<scalar_t>(v[i]);
              continue;
            }
            const int64_t pi = g.plane_index(od, oh, ow + i * ow_step, t[i]);
            o[ei] = channels_last ? in[((ei / (g.C * OP)) * IP + pi) * g.C + ei % g.C]
                                  : in[(ei / OP) * IP + pi];
          }
        }
      }
      if (am) {
        // The argmax dtype is chosen here, per call, so that the fold
        // itself is compiled once per dtype rather than once per pair.
        dispatch_argmax(am_type, [&](auto am_tag) {
          using arg_t = decltype(am_tag);
          store_taps(static_cast<arg_t*>(am) + e, t, n, es);
        });
      }
      if (idx) {
        for (int64_t i = 0; i < n; ++i) {
          idx[e + i * es] = g.plane_index(od, oh, ow + i * ow_step, t[i]);
        }
      }
    };
    // Taps are wanted for the argmax, the indices and the 16-bit NaN bits
    // (a float or double result already is the winning element's bits).
    const bool want_taps =
        am != nullptr || idx != nullptr || (keep_nan_bits && is_half_type<scalar_t>);
    // Without taps a float result is only stored: the engine can store it.
    scalar_t* direct = !want_taps && std::is_same<scalar_t, float>::value ? o : nullptr;
    const int64_t bytes = (x.numel() + out.numel()) * static_cast<int64_t>(sizeof(scalar_t));
    const bool stream = direct != nullptr && bytes > stream_min_bytes();
    if (channels_last) {
      fold_cl<MaxReduce<acc_t>>(in, g, finish, want_taps, direct, stream);
    } else {
      fold_contig<MaxReduce<acc_t>>(in, g, finish, want_taps, direct, stream);
    }
  });
}

void max_pool_bwd(const at::Tensor& go, const at::Tensor& amc, at::Tensor& grad_input,
                  const Geometry& g, bool channels_last) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.max_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_argmax(amc.scalar_type(), [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* gop = go.const_data_ptr<scalar_t>();
      const arg_t* am = reinterpret_cast<const arg_t*>(amc.const_data_ptr());
      scalar_t* gi = grad_input.data_ptr<scalar_t>();
      if (!channels_last && plane_scatter_fits(g) &&
          (g.dim[2].out < 8 || !windows_tile_input(g))) {
        max_backward_plane_scatter(gi, gop, am, g);
        return;
      }
      if (windows_tile_input(g)) {
        if (channels_last) {
          max_backward_tiles_cl(gi, gop, am, g);
          return;
        }
        max_backward_tiles(gi, gop, am, g);
        return;
      }
      if (!channels_last) {
        // Output ow sends its gradient to tap t only if t won its window.
        struct Policy {
          const arg_t* am;
          const scalar_t* go;
          int64_t OW;
          const arg_t* a = nullptr;
          const scalar_t* gr = nullptr;
          void set_row(int64_t orow, int64_t, int64_t) {
            a = am + orow * OW;
            gr = go + orow * OW;
          }
          acc_t val(int64_t ow, int32_t t) const {
            return a[ow] == static_cast<arg_t>(t) ? static_cast<acc_t>(gr[ow]) : acc_t(0);
          }
          typename Lanes8<acc_t>::V val8(int64_t ow, int32_t t) const {
            using V = typename Lanes8<acc_t>::V;
            const V x = load8<V, acc_t>(gr + ow);
            return keep8(x, arg_eq8<typename Lanes8<acc_t>::T>(a + ow, static_cast<arg_t>(t)));
          }
        };
        gather_contig</*TapFree=*/false>(gi, g, Policy{am, gop, g.dim[2].out});
      } else {
        // A covering output sends channel c its gradient if tap won there.
        struct ClPolicy {
          const arg_t* am;
          const scalar_t* go;
          int64_t C;
          struct Cover {
            const arg_t* a;
            const scalar_t* s;
            arg_t t;
          };
          Cover cover(int64_t opos, int64_t tap, int64_t, int64_t, int64_t) const {
            return {am + opos * C, go + opos * C, static_cast<arg_t>(tap)};
          }
          using V = typename Lanes8<acc_t>::V;
          using T = typename Lanes8<acc_t>::T;
          V take8(const Cover& k, int64_t c) const {
            const V x = load8<V, acc_t>(k.s + c);
            return keep8(x, arg_eq8<T>(k.a + c, k.t));
          }
          acc_t take1(const Cover& k, int64_t c) const {
            return k.a[c] == k.t ? static_cast<acc_t>(k.s[c]) : acc_t(0);
          }
        };
        gather_cl(gi, g, ClPolicy{am, gop, g.C});
      }
    });
  });
}

// out[o] = source[the input element that won window o] (0 for an empty
// window or a foreign argmax that names no input element).
void max_pool_gather(const at::Tensor& src, const at::Tensor& amc, at::Tensor& out,
                     const Geometry& g, bool channels_last) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "poolext.max_pool_gather", [&] {
    dispatch_argmax(amc.scalar_type(), [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* s = src.const_data_ptr<scalar_t>();
      const arg_t* am = reinterpret_cast<const arg_t*>(amc.const_data_ptr());
      scalar_t* o = out.data_ptr<scalar_t>();
      const int64_t OD = g.dim[0].out, OH = g.dim[1].out, OW = g.dim[2].out;
      const int64_t OP = g.out_plane(), IP = g.in_plane(), C = g.C;
      at::parallel_for(0, g.N * g.C * OP, grain_for(4), [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; ++e) {
          int64_t sp, plane_or_n, c = 0;
          if (!channels_last) {
            sp = e % OP;
            plane_or_n = e / OP;
          } else {
            c = e % C;
            sp = (e / C) % OP;
            plane_or_n = e / (C * OP);
          }
          const int64_t ow = sp % OW, oh = (sp / OW) % OH, od = sp / (OW * OH);
          (void)OD;
          const int64_t t = static_cast<int64_t>(am[e]);
          // An empty window (or a foreign argmax) names no input element: nothing flows.
          if (!g.tap_in_bounds(od, oh, ow, t)) {
            o[e] = scalar_t(0);
            continue;
          }
          const int64_t ip = g.plane_index(od, oh, ow, t);
          o[e] = channels_last ? s[(plane_or_n * IP + ip) * C + c] : s[plane_or_n * IP + ip];
        }
      });
    });
  });
}

void avg_pool_fwd(const at::Tensor& x, at::Tensor& out, const Geometry& g, bool channels_last,
                  bool count_include_pad, int64_t dov) {
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kLong, at::kHalf, at::kBFloat16, x.scalar_type(), "poolext.avg_pool", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    // Every window of a run has the same divisor.
    auto finish = [&](int64_t e, int64_t n, const acc_t* v, const int32_t*, int64_t od, int64_t oh,
                      int64_t ow, int64_t, int64_t es) {
      const auto div = static_cast<acc_t>(g.avg_divisor(od, oh, ow, count_include_pad, dov));
      if (es == 1) {
        for (int64_t i = 0; i < n; ++i) o[e + i] = static_cast<scalar_t>(v[i] / div);
      } else {
        for (int64_t i = 0; i < n; ++i) o[e + i * es] = static_cast<scalar_t>(v[i] / div);
      }
    };
    if (channels_last) {
      fold_cl<SumReduce<acc_t>>(in, g, finish, false);
    } else {
      fold_contig<SumReduce<acc_t>>(in, g, finish);
    }
  });
}

void avg_pool_bwd(const at::Tensor& go, at::Tensor& grad_input, const Geometry& g,
                  bool channels_last, bool count_include_pad, int64_t dov) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.avg_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    scalar_t* gi = grad_input.data_ptr<scalar_t>();
    if (!channels_last) {
      if (plane_scatter_fits(g) && g.dim[2].out < 8 && g.out_plane() > 1) {
        // Small planes.  (One window per plane, global pooling included, is a
        // broadcast: gather_contig's plane runs write it faster.)
        avg_backward_plane_scatter(gi, gop, g, count_include_pad, dov);
        return;
      }
      // Output ow sends grad / divisor to every tap of its window; the row of
      // quotients is formed once per covering output row.  A divisor is the
      // product of per-dim factors, exact in acc_t for windows under 2^24
      // taps; larger windows take avg_divisor per output.
      struct Policy {
        const scalar_t* go;
        const Geometry* g;
        bool count_include_pad;
        int64_t dov;
        std::vector<acc_t> wdiv;  // W factor of each output's divisor (fast path)
        std::vector<acc_t> q;
        Policy(const scalar_t* go_, const Geometry& g_, bool cip, int64_t dov_)
            : go(go_), g(&g_), count_include_pad(cip), dov(dov_), q(g_.dim[2].out) {
          const Dim& W = g_.dim[2];
          if (dov == 0 && g_.kernel_volume() < (int64_t(1) << 24)) {
            for (int64_t ow = 0; ow < W.out; ++ow) {
              wdiv.push_back(static_cast<acc_t>(
                  cip ? W.avg_pool_size(ow) : W.avg_hi(ow) - W.avg_lo(ow)));
            }
          }
        }
        void set_row(int64_t orow, int64_t od, int64_t oh) {
          const Dim &D = g->dim[0], &H = g->dim[1];
          const int64_t OW = g->dim[2].out;
          const scalar_t* gr = go + orow * OW;
          if (dov != 0) {
            const auto div = static_cast<acc_t>(dov);
            for (int64_t ow = 0; ow < OW; ++ow) q[ow] = static_cast<acc_t>(gr[ow]) / div;
          } else if (!wdiv.empty()) {
            const auto dh = static_cast<acc_t>(
                count_include_pad
                    ? D.avg_pool_size(od) * H.avg_pool_size(oh)
                    : (D.avg_hi(od) - D.avg_lo(od)) * (H.avg_hi(oh) - H.avg_lo(oh)));
            for (int64_t ow = 0; ow < OW; ++ow) q[ow] = static_cast<acc_t>(gr[ow]) / (dh * wdiv[ow]);
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) {
              q[ow] = static_cast<acc_t>(gr[ow]) /
                      static_cast<acc_t>(g->avg_divisor(od, oh, ow, count_include_pad, 0));
            }
          }
        }
        acc_t val(int64_t ow, int32_t) const { return q[ow]; }
        typename Lanes8<acc_t>::V val8(int64_t ow, int32_t) const {
          return load8<typename Lanes8<acc_t>::V, acc_t>(q.data() + ow);
        }
      };
      gather_contig</*TapFree=*/true>(gi, g, Policy(gop, g, count_include_pad, dov));
    } else {
      // A covering output sends every channel grad / divisor.
      struct ClPolicy {
        const scalar_t* go;
        const Geometry* g;
        bool count_include_pad;
        int64_t dov;
        struct Cover {
          const scalar_t* s;
          acc_t div;
        };
        Cover cover(int64_t opos, int64_t, int64_t od, int64_t oh, int64_t ow) const {
          return {go + opos * g->C,
                  static_cast<acc_t>(g->avg_divisor(od, oh, ow, count_include_pad, dov))};
        }
        using V = typename Lanes8<acc_t>::V;
        V take8(const Cover& k, int64_t c) const {
          return load8<V, acc_t>(k.s + c) / (V{} + k.div);
        }
        acc_t take1(const Cover& k, int64_t c) const {
          return static_cast<acc_t>(k.s[c]) / k.div;
        }
      };
      gather_cl(gi, g, ClPolicy{gop, &g, count_include_pad, dov});
    }
  });
}

}  // namespace POOLEXT_CPU_ISA
}  // namespace cpu
}  // namespace poolext
