// Backward by walking outputs instead of inputs, where that gives the same
// sums in the same order: small planes summed in a private buffer per thread
// (plane scatter), and windows that tile the input exactly (each input
// element in one window).  Still no atomics: no two threads write one element.
//
// Part of the CPU engine (see kernels_impl.h, which includes the parts in
// order inside its per-ISA namespace, after every header they need; no part
// includes anything itself).

// Max pooling backward for small planes, contiguous layout.  Rows of a few
// outputs leave gather_contig_rows and max_backward_tiles mostly per-row
// set-up, and a gather over a whole plane's cover list still pays a compare
// per cover (nine per element for 3x3/s1 windows) where each output sends its
// gradient to one element.  So each plane is summed in a buffer of its own:
// zeroed, then every output in increasing order adds its gradient at its
// winner, then narrowed once into grad_in.  Each element gets 0 plus its
// winners' gradients in increasing output order, the sum the gather forms,
// so the bits are the same; the buffer is private to one thread, so there
// are no atomics and grad_in is written once.  pos[o * KV + t]: the plane offset of tap t of output o, or -1
// outside the input (an empty window, or a foreign argmax, sends nothing).
// Max pooling takes this path for any row length whose windows overlap
// (one add per output beats a compare per cover; the 112x112 stem backward
// went from 8.8 to 6.3-7.2 ms, 12x12 3x3/s1 from 7 to 1 ms); tiling windows
// keep max_backward_tiles unless rows are short.  Average pooling sends
// every tap a share, so only short rows gain.
inline bool plane_scatter_fits(const Geometry& g) {
  return g.in_plane() <= (int64_t{1} << 16) &&
         g.out_plane() * g.kernel_volume() <= (int64_t{1} << 18);
}

inline std::vector<int32_t> plane_positions(const Geometry& g) {
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t KV = g.kernel_volume();
  std::vector<int32_t> pos(g.out_plane() * KV, -1);
  for (int64_t od = 0; od < D.out; ++od) {
    for (int64_t oh = 0; oh < H.out; ++oh) {
      for (int64_t ow = 0; ow < W.out; ++ow) {
        const int64_t o = (od * H.out + oh) * W.out + ow;
        for (int64_t jd = D.tap_lo(od); jd < D.tap_hi(od); ++jd) {
          for (int64_t jh = H.tap_lo(oh); jh < H.tap_hi(oh); ++jh) {
            for (int64_t jw = W.tap_lo(ow); jw < W.tap_hi(ow); ++jw) {
              const int64_t t = g.tap(jd, jh, jw);
              pos[o * KV + t] = static_cast<int32_t>(g.plane_index(od, oh, ow, t));
            }
          }
        }
      }
    }
  }
  return pos;
}

// The plane loop both kinds share: per thread one buffer of acc_t; per
// plane, zeroed, add(plane, acc, pos) sums the outputs into it, then it is
// narrowed into grad_in.  work: steps per plane, for the grain.
template <typename scalar_t, typename Add>
void plane_scatter(scalar_t* grad_in, const Geometry& g, int64_t work, const Add& add) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t IP = g.in_plane();
  const std::vector<int32_t> pos = plane_positions(g);
  at::parallel_for(0, g.N * g.C, grain_for(work), [&](int64_t p0, int64_t p1) {
    std::vector<acc_t> acc(IP);
    for (int64_t plane = p0; plane < p1; ++plane) {
      std::fill(acc.begin(), acc.end(), acc_t(0));
      add(plane, acc.data(), pos.data());
      store_n(grad_in + plane * IP, acc.data(), IP, 1);
    }
  });
}

template <typename scalar_t, typename arg_t>
void max_backward_plane_scatter(scalar_t* grad_in, const scalar_t* go, const arg_t* am,
                                const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t OP = g.out_plane(), KV = g.kernel_volume();
  plane_scatter(grad_in, g, g.in_plane() + OP, [&](int64_t plane, acc_t* acc, const int32_t* pos) {
    const arg_t* a = am + plane * OP;
    const scalar_t* gr = go + plane * OP;
    for (int64_t o = 0; o < OP; ++o) {
      const auto t = static_cast<int64_t>(a[o]);
      if (t < 0 || t >= KV) continue;
      const int32_t q = pos[o * KV + t];
      if (q >= 0) acc[q] += static_cast<acc_t>(gr[o]);
    }
  });
}

// Average pooling backward for small planes, the same way: output o adds
// grad / divisor at each of its in-bounds taps, outputs in increasing order.
// The divisors are found once (exact in acc_t, as the row path's products).
template <typename scalar_t>
void avg_backward_plane_scatter(scalar_t* grad_in, const scalar_t* go, const Geometry& g,
                                bool count_include_pad, int64_t dov) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t OP = g.out_plane(), KV = g.kernel_volume();
  std::vector<acc_t> div;
  div.reserve(OP);
  for (int64_t od = 0; od < D.out; ++od) {
    for (int64_t oh = 0; oh < H.out; ++oh) {
      for (int64_t ow = 0; ow < W.out; ++ow) {
        div.push_back(static_cast<acc_t>(g.avg_divisor(od, oh, ow, count_include_pad, dov)));
      }
    }
  }
  plane_scatter(grad_in, g, g.in_plane() + OP * KV,
                [&](int64_t plane, acc_t* acc, const int32_t* pos) {
                  const scalar_t* gr = go + plane * OP;
                  for (int64_t o = 0; o < OP; ++o) {
                    const acc_t q = static_cast<acc_t>(gr[o]) / div[o];
                    const int32_t* po = pos + o * KV;
                    for (int64_t t = 0; t < KV; ++t) {
                      if (po[t] >= 0) acc[po[t]] += q;
                    }
                  }
                });
}

// Max pooling backward when the windows tile the input exactly (kernel ==
// stride, no padding or dilation, every input size a multiple of its
// kernel): each input element lies in exactly one window, so walking the
// windows gives every grad_input element the sum the gather forms: 0 +
// grad_output where its window chose it, 0 elsewhere.  No two windows write
// the same element: deterministic and without atomics like the gather, but
// with no cover tables or per-element window search.
inline bool windows_tile_input(const Geometry& g) {
  for (const Dim& dm : g.dim) {
    if (dm.k != dm.s || dm.p != 0 || dm.d != 1 || dm.in != dm.out * dm.k) return false;
  }
  return true;
}

// Calls f(r, n_or_plane, od, oh) for output rows r in [r0, r1) of a
// problem with OD x OH rows per plane, counting instead of dividing.
template <typename F>
inline void for_output_rows(int64_t r0, int64_t r1, int64_t OD, int64_t OH, F&& f) {
  int64_t oh = r0 % OH, od = (r0 / OH) % OD, plane = r0 / (OH * OD);
  for (int64_t r = r0; r < r1; ++r) {
    f(r, plane, od, oh);
    if (++oh == OH) {
      oh = 0;
      if (++od == OD) {
        od = 0;
        ++plane;
      }
    }
  }
}

// One input row of a tiling, contiguous layout: the K-wide pieces of it that
// the windows of one output row cover, in order.  a/gr: the argmax and
// grad_output of that output row; the row's columns are taps t0 .. t0+K-1.
template <int KW, typename scalar_t, typename arg_t>
inline void tile_row(scalar_t* __restrict__ row, const arg_t* __restrict__ a,
                     const scalar_t* __restrict__ gr, int64_t OW, int64_t kw, int64_t t0) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t K = KW > 0 ? KW : kw;
  for (int64_t ow = 0; ow < OW; ++ow) {
    const acc_t gv = acc_t(0) + static_cast<acc_t>(gr[ow]);
    const int64_t won = static_cast<int64_t>(a[ow]) - t0;  // the winning column, if in this row
    for (int64_t jw = 0; jw < K; ++jw) {
      row[ow * K + jw] = static_cast<scalar_t>(won == jw ? gv : acc_t(0));
    }
  }
}

// tile_row for 2- and 4-wide windows, eight windows (16 or 32 elements) at a
// time in vector lanes: each window's gradient goes to lane jw of its group.
template <int K, typename scalar_t, typename arg_t>
inline void tile_row_lanes(scalar_t* row, const arg_t* a, const scalar_t* gr, int64_t OW,
                           int64_t t0) {
  static_assert(K == 2 || K == 4, "interleaves of two or four");
  using acc_t = at::opmath_type<scalar_t>;
  int64_t ow = 0;
  if constexpr (Lanes8<acc_t>::ok) {
    using V = typename Lanes8<acc_t>::V;
    using T = typename Lanes8<acc_t>::T;
    auto eight = [&](scalar_t* dst, const arg_t* aa, const scalar_t* gg) {
      const V x = V{} + load8<V, acc_t>(gg);
      auto sel = [&](int jw) {
        return keep8(x, arg_eq8<T>(aa, static_cast<arg_t>(t0 + jw)));
      };
      if constexpr (K == 2) {
        store_interleaved2(dst, sel(0), sel(1));
      } else {
        store_interleaved4(dst, sel(0), sel(1), sel(2), sel(3));
      }
    };
    for (; ow + 8 <= OW; ow += 8) eight(row + K * ow, a + ow, gr + ow);
    if (ow < OW && OW >= 8) {  // the last windows: the last eight again (same values)
      eight(row + K * (OW - 8), a + OW - 8, gr + OW - 8);
    } else if (const int64_t rest = OW - ow) {  // fewer than eight: through padded copies
      arg_t abuf[8];
      scalar_t gbuf[8] = {}, obuf[8 * K];
      std::fill(abuf, abuf + 8, static_cast<arg_t>(t0 + K));  // a tap no column has
      std::copy(a + ow, a + OW, abuf);
      std::copy(gr + ow, gr + OW, gbuf);
      eight(obuf, abuf, gbuf);
      std::copy(obuf, obuf + K * rest, row + K * ow);
    }
    return;
  }
  tile_row<K>(row, a, gr, OW, K, t0);
}

template <typename scalar_t, typename arg_t>
void max_backward_tiles(scalar_t* grad_in, const scalar_t* go, const arg_t* am,
                        const Geometry& g) {
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t orows = g.N * g.C * D.out * H.out;  // output rows (plane, od, oh)
  at::parallel_for(0, orows, grain_for(D.k * H.k * W.in + 16), [&](int64_t r0, int64_t r1) {
    for_output_rows(r0, r1, D.out, H.out, [&](int64_t r, int64_t plane, int64_t od, int64_t oh) {
      const arg_t* a = am + r * W.out;
      const scalar_t* gr = go + r * W.out;
      for (int64_t jd = 0; jd < D.k; ++jd) {
        for (int64_t jh = 0; jh < H.k; ++jh) {
          const int64_t id = od * D.k + jd, ih = oh * H.k + jh;
          scalar_t* row = grad_in + ((plane * D.in + id) * H.in + ih) * W.in;
          const int64_t t0 = (jd * H.k + jh) * W.k;
          switch (W.k) {
            case 1: tile_row<1>(row, a, gr, W.out, 1, t0); break;
            case 2: tile_row_lanes<2>(row, a, gr, W.out, t0); break;
            case 3: tile_row<3>(row, a, gr, W.out, 3, t0); break;
            case 4: tile_row_lanes<4>(row, a, gr, W.out, t0); break;
            default: tile_row<0>(row, a, gr, W.out, W.k, t0); break;
          }
        }
      }
    });
  });
}

// The same for channels_last: each window's taps, in memory order along W,
// take their C channels from the window's C outputs, eight channels at a
// time in vector lanes.
template <typename scalar_t, typename arg_t>
void max_backward_tiles_cl(scalar_t* grad_in, const scalar_t* go, const arg_t* am,
                           const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  using V = typename Lanes8<acc_t>::V;
  using T = typename Lanes8<acc_t>::T;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t C = g.C, C8 = C - C % 8;
  const int64_t orows = g.N * D.out * H.out;  // output rows (n, od, oh)
  at::parallel_for(0, orows, grain_for(D.k * H.k * W.in * C + 16), [&](int64_t r0, int64_t r1) {
    for_output_rows(r0, r1, D.out, H.out, [&](int64_t r, int64_t n, int64_t od, int64_t oh) {
      for (int64_t jd = 0; jd < D.k; ++jd) {
        for (int64_t jh = 0; jh < H.k; ++jh) {
          const int64_t id = od * D.k + jd, ih = oh * H.k + jh;
          scalar_t* row = grad_in + ((n * D.in + id) * H.in + ih) * W.in * C;
          const int64_t t0 = (jd * H.k + jh) * W.k;
          for (int64_t ow = 0; ow < W.out; ++ow) {
            const arg_t* a = am + (r * W.out + ow) * C;
            const scalar_t* gr = go + (r * W.out + ow) * C;
            for (int64_t jw = 0; jw < W.k; ++jw) {
              scalar_t* dst = row + (ow * W.k + jw) * C;
              const auto t = static_cast<arg_t>(t0 + jw);
              for (int64_t c = 0; c < C8; c += 8) {
                const V x = load8<V, acc_t>(gr + c);
                store8(dst + c, V{} + keep8(x, arg_eq8<T>(a + c, t)));
              }
              for (int64_t c = C8; c < C; ++c) {
                dst[c] = static_cast<scalar_t>(a[c] == t ? acc_t(0) + static_cast<acc_t>(gr[c])
                                                         : acc_t(0));
              }
            }
          }
        }
      }
    });
  });
}
