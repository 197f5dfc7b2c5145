// LP pooling on CPU: the ops of core/lp_pool.h with loops over rows instead
// of the per-element functors (which the CUDA ops run), computing the same
// values in the same order of operations:
//
//   contiguous forward, per output row: each input row of the window is
//     raised to p once into a buffer (zeros past the input's end, for the
//     ceil-mode tail), and each output sums its taps row by row, left to
//     right, as the functor does;
//   contiguous backward, per input row: the covering output rows, in
//     increasing order, add each output's term into a row buffer over its
//     window, so every input element sums its windows in increasing output
//     order, as the functor does;
//   channels_last: the same per position, with channels innermost.
//
// Inner loops run over contiguous memory with the power chosen outside them
// (x*x for p = 2, ...), so the compiler vectorises them.  Adding 0 for a tap
// past the input leaves a sum unchanged (a sum that starts at +0 is never
// -0), so the results are bit-identical to the functors'
// (tests/test_lp_pool.py checks the two against each other).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/lp_pool.h"

namespace poolext {
namespace cpu {
namespace {

// Calls f(pow) with a callable that computes lp_power(x, e), specialised for
// the exponents lp_power treats specially.
template <typename acc_t, typename F>
void with_power(acc_t e, F&& f) {
  if (e == acc_t(0)) {
    f([](acc_t) { return acc_t(1); });
  } else if (e == acc_t(1)) {
    f([](acc_t x) { return x; });
  } else if (e == acc_t(2)) {
    f([](acc_t x) { return x * x; });
  } else if (e == acc_t(3)) {
    f([](acc_t x) { return x * x * x; });
  } else if (e == acc_t(0.5)) {
    f([](acc_t x) { return std::sqrt(x); });
  } else {
    f([e](acc_t x) { return lp_power(x, e); });
  }
}

// sum[o] += row[o*s + j] for every output o, tap j in increasing j: each sum
// takes its taps left to right.  Loops over o innermost, with s a constant
// for the common strides, so they vectorise.
template <int S, typename acc_t>
void add_taps_s(acc_t* sum, const acc_t* row, int64_t n, int64_t k, int64_t s) {
  const int64_t st = S > 0 ? S : s;
  for (int64_t j = 0; j < k; ++j) {
    const acc_t* r = row + j;
    for (int64_t o = 0; o < n; ++o) sum[o] += r[o * st];
  }
}
template <typename acc_t>
void add_taps(acc_t* sum, const acc_t* row, int64_t n, int64_t k, int64_t s) {
  if (s == 1) return add_taps_s<1>(sum, row, n, k, s);
  if (s == 2) return add_taps_s<2>(sum, row, n, k, s);
  add_taps_s<0>(sum, row, n, k, s);
}

// row[o*s + j] += t[o] for every output o in increasing o, tap j: each
// element takes its windows' terms in increasing output order.
template <int S, typename acc_t>
void spread_taps_s(acc_t* row, const acc_t* t, int64_t n, int64_t k, int64_t s) {
  const int64_t st = S > 0 ? S : s;
  if (st >= k) {  // windows do not overlap: any loop order keeps each element's order
    for (int64_t j = 0; j < k; ++j) {
      acc_t* r = row + j;
      for (int64_t o = 0; o < n; ++o) r[o * st] += t[o];
    }
    return;
  }
  for (int64_t o = 0; o < n; ++o) {
    acc_t* r = row + o * st;
    for (int64_t j = 0; j < k; ++j) r[j] += t[o];
  }
}
template <typename acc_t>
void spread_taps(acc_t* row, const acc_t* t, int64_t n, int64_t k, int64_t s) {
  if (s == 1) return spread_taps_s<1>(row, t, n, k, s);
  if (s == 2) return spread_taps_s<2>(row, t, n, k, s);
  spread_taps_s<0>(row, t, n, k, s);
}

// Rows of work per parallel task: about 32K elements each.
inline int64_t grain(int64_t per_row) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(per_row, 1)); }

struct RowLaunch {
  template <typename scalar_t, typename acc_t>
  void forward(const Problem& pb, const LpExponents<acc_t>& ex, const scalar_t* in,
               scalar_t* out, acc_t* coef) const {
    const Geometry& g = pb.g;
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const acc_t K = static_cast<acc_t>(g.kernel_volume());
    const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
    with_power(ex.p, [&](auto power) {
      if (!pb.channels_last) {
        const int64_t width = std::max((W.out - 1) * W.s + W.k, W.in);
        const int64_t rows = g.N * g.C * D.out * H.out;
        at::parallel_for(0, rows, grain(W.in * W.k), [&](int64_t r0, int64_t r1) {
          std::vector<acc_t> pw(width, acc_t(0)), sum(W.out);
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t oh = r % H.out, od = (r / H.out) % D.out, plane = r / H.out / D.out;
            std::fill(sum.begin(), sum.end(), acc_t(0));
            for (int64_t d = D.avg_lo(od); d < D.avg_hi(od); ++d) {
              for (int64_t h = H.avg_lo(oh); h < H.avg_hi(oh); ++h) {
                const scalar_t* row = in + plane * in_plane + (d * H.in + h) * W.in;
                for (int64_t w = 0; w < W.in; ++w) pw[w] = power(static_cast<acc_t>(row[w]));
                add_taps(sum.data(), pw.data(), W.out, W.k, W.s);
              }
            }
            const int64_t o = plane * out_plane + (od * H.out + oh) * W.out;
            const int64_t dh = D.avg_pool_size(od) * H.avg_pool_size(oh);
            for (int64_t ow = 0; ow < W.out; ++ow) {
              const acc_t div = static_cast<acc_t>(dh * W.avg_pool_size(ow));
              out[o + ow] = static_cast<scalar_t>(
                  lp::finish(sum[ow], div, K, ex, coef == nullptr ? nullptr : coef + o + ow));
            }
          }
        });
        return;
      }
      const int64_t C = g.C;
      at::parallel_for(0, g.N * out_plane, grain(C * W.k), [&](int64_t q0, int64_t q1) {
        std::vector<acc_t> acc(C);
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t ow = q % W.out, oh = (q / W.out) % H.out;
          const int64_t od = (q / W.out / H.out) % D.out, n = q / out_plane;
          std::fill(acc.begin(), acc.end(), acc_t(0));
          for (int64_t d = D.avg_lo(od); d < D.avg_hi(od); ++d) {
            for (int64_t h = H.avg_lo(oh); h < H.avg_hi(oh); ++h) {
              for (int64_t w = W.avg_lo(ow); w < W.avg_hi(ow); ++w) {
                const scalar_t* px = in + (n * in_plane + (d * H.in + h) * W.in + w) * C;
                for (int64_t c = 0; c < C; ++c) acc[c] += power(static_cast<acc_t>(px[c]));
              }
            }
          }
          const acc_t div = static_cast<acc_t>(g.avg_divisor(od, oh, ow, true, 0));
          for (int64_t c = 0; c < C; ++c) {
            out[q * C + c] = static_cast<scalar_t>(
                lp::finish(acc[c], div, K, ex, coef == nullptr ? nullptr : coef + q * C + c));
          }
        }
      });
    });
  }

  template <typename scalar_t, typename acc_t>
  void backward(const Problem& pb, const LpExponents<acc_t>& ex, const scalar_t* grad_out,
                const scalar_t* in, const acc_t* coef, scalar_t* grad_in) const {
    const Geometry& g = pb.g;
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
    const acc_t p = ex.p;
    with_power(ex.p_minus_1, [&](auto power) {
      if (!pb.channels_last) {
        const int64_t width = std::max((W.out - 1) * W.s + W.k, W.in);
        const int64_t rows = g.N * g.C * D.in * H.in;
        at::parallel_for(0, rows, grain(W.out * W.k), [&](int64_t r0, int64_t r1) {
          std::vector<acc_t> acc(width), t(W.out);
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t h = r % H.in, d = (r / H.in) % D.in, plane = r / H.in / D.in;
            std::fill(acc.begin(), acc.end(), acc_t(0));
            D.for_each_cover(d, [&](int64_t od, int64_t) {
              H.for_each_cover(h, [&](int64_t oh, int64_t) {
                const int64_t o = plane * out_plane + (od * H.out + oh) * W.out;
                for (int64_t ow = 0; ow < W.out; ++ow) {
                  t[ow] = lp::term(static_cast<acc_t>(grad_out[o + ow]), coef[o + ow]);
                }
                spread_taps(acc.data(), t.data(), W.out, W.k, W.s);
              });
            });
            const int64_t i = plane * in_plane + (d * H.in + h) * W.in;
            for (int64_t w = 0; w < W.in; ++w) {
              grad_in[i + w] =
                  static_cast<scalar_t>(acc[w] * (p * power(static_cast<acc_t>(in[i + w]))));
            }
          }
        });
        return;
      }
      const int64_t C = g.C;
      at::parallel_for(0, g.N * in_plane, grain(C * W.k), [&](int64_t q0, int64_t q1) {
        std::vector<acc_t> acc(C);
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t w = q % W.in, h = (q / W.in) % H.in;
          const int64_t d = (q / W.in / H.in) % D.in, n = q / in_plane;
          std::fill(acc.begin(), acc.end(), acc_t(0));
          D.for_each_cover(d, [&](int64_t od, int64_t) {
            H.for_each_cover(h, [&](int64_t oh, int64_t) {
              W.for_each_cover(w, [&](int64_t ow, int64_t) {
                const int64_t o = (n * out_plane + (od * H.out + oh) * W.out + ow) * C;
                for (int64_t c = 0; c < C; ++c) {
                  acc[c] += lp::term(static_cast<acc_t>(grad_out[o + c]), coef[o + c]);
                }
              });
            });
          });
          for (int64_t c = 0; c < C; ++c) {
            grad_in[q * C + c] =
                static_cast<scalar_t>(acc[c] * (p * power(static_cast<acc_t>(in[q * C + c]))));
          }
        }
      });
    });
  }
};

std::tuple<at::Tensor, at::Tensor> lp_pool_cpu(const at::Tensor& self, double norm_type,
                                               at::IntArrayRef kernel_size,
                                               at::IntArrayRef stride, bool ceil_mode,
                                               bool channels_last, bool with_coef) {
  return lp_pool_impl(RowLaunch(), self, norm_type, kernel_size, stride, ceil_mode,
                      channels_last, with_coef);
}

at::Tensor lp_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& self,
                                const at::Tensor& coef, double norm_type,
                                at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                bool ceil_mode, bool channels_last) {
  return lp_pool_backward_impl(RowLaunch(), grad_output, self, coef, norm_type, kernel_size,
                               stride, ceil_mode, channels_last);
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("lp_pool", &lp_pool_cpu);
  m.impl("lp_pool_backward", &lp_pool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
