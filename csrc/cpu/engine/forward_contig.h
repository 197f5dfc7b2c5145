// Contiguous (NCDHW) forward.  Every output folds the in-bounds taps of its
// window in row-major (d, h, w) order.  The engine walks an output row at a
// time and, for the windows that lie wholly inside the input along W, folds
// one tap over a chunk of consecutive outputs (eight to a register, four
// registers at a time), so the inner loop is a unit- or fixed-stride loop
// the compiler vectorises; rows of few outputs fold eight planes together.
//
// Part of the CPU engine (see kernels_impl.h, which includes the parts in
// order inside its per-ISA namespace, after every header they need; no part
// includes anything itself).

// Both forward engines hand results over in runs:
//   finish(e, n, v, t, od, oh, ow, ow_step, es)
// covers outputs e, e+es, ..., e+(n-1)*es of the output tensor (flat, in its
// memory order) with values v[0..n) and taps t[0..n); output e+i*es sits at
// window (od, oh, ow + i*ow_step).  All windows of a run have the same shape
// (interior runs along W, runs of one window over channels or planes; border
// windows come as runs of 1), so anything that depends on the window's
// clipping, such as an average's divisor, is the same for the whole run.

// Contiguous forward.  `in` holds N*C planes of D*H*W.  Without Taps (max
// values only: no argmax, no indices) the vector groups leave their taps at
// the first tap; the values are the same.
template <typename R, int S, bool Taps, typename scalar_t, typename Finish>
void fold_contig_rows(const scalar_t* in, const Geometry& g, const GeometryTaps& gt, int64_t r0,
                      int64_t r1, Finish&& finish, scalar_t* direct, bool stream) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  acc_t vbuf[kChunk];
  int32_t tbuf[kChunk];
  // Interior along W: windows entirely inside [0, W.in).
  int64_t owa = std::min(div_ceil(W.p, W.s), W.out);
  int64_t owb = div_floor(W.in - 1 - (W.k - 1) * W.d + W.p, W.s) + 1;
  owb = std::max(owa, std::min(owb, W.out));
  int64_t oh = r0 % H.out, od = (r0 / H.out) % D.out, plane = r0 / (H.out * D.out);
  for (int64_t r = r0; r < r1; ++r) {
    if (r > r0 && ++oh == H.out) {  // the next row (counted, not divided)
      oh = 0;
      if (++od == D.out) {
        od = 0;
        ++plane;
      }
    }
    const scalar_t* in_plane = in + plane * g.in_plane();
    const int64_t jd0 = gt.d.lo[od], jd1 = gt.d.hi[od];
    const int64_t jh0 = gt.h.lo[oh], jh1 = gt.h.hi[oh];
    auto border = [&](int64_t ow) {
      const int64_t jw0 = gt.w.lo[ow], jw1 = gt.w.hi[ow];
      acc_t v;
      int32_t t;
      R::init(v, t, static_cast<int32_t>(g.tap(jd0, jh0, jw0)));  // first_tap
      for (int64_t jd = jd0; jd < jd1; ++jd) {
        for (int64_t jh = jh0; jh < jh1; ++jh) {
          const scalar_t* row =
              in_plane + ((D.start(od) + jd * D.d) * H.in + H.start(oh) + jh * H.d) * W.in;
          for (int64_t jw = jw0; jw < jw1; ++jw) {
            R::step(v, t, static_cast<acc_t>(row[W.start(ow) + jw * W.d]),
                    static_cast<int32_t>(g.tap(jd, jh, jw)));
          }
        }
      }
      finish(r * W.out + ow, 1, &v, &t, od, oh, ow, 1, 1);
    };
    if (jd0 >= jd1 || jh0 >= jh1) {  // every window of this row is empty
      for (int64_t ow = 0; ow < W.out; ++ow) border(ow);
      continue;
    }
    if (owb - owa < 4) {  // few outputs per row (fold_contig sends these to fold_planes)
      for (int64_t ow = 0; ow < W.out; ++ow) border(ow);
      continue;
    }
    for (int64_t ow = 0; ow < owa; ++ow) border(ow);
    for (int64_t ow0 = owa; ow0 < owb; ow0 += kChunk) {
      const int64_t n = std::min(kChunk, owb - ow0);
      const auto tap0 = static_cast<int32_t>(g.tap(jd0, jh0, gt.w.lo[ow0]));  // first_tap
      int64_t i = 0;  // outputs [ow0, ow0 + i) done in registers
      if constexpr ((S == 1 || S == 2 || S == 4) && std::is_same<acc_t, float>::value) {
        // Eight windows in the lanes of one register across all their taps
        // (no buffer round trip per tap).  Stride 2 takes every other element
        // of 15 loaded ones, which leaves the lanes as outputs
        // [0 1 4 5 | 2 3 6 7], put back in order at the end.  Loads stay
        // inside the eight windows, so a last partial group is done as the
        // eight windows ending at the chunk's end (recomputing a few).
        const bool tiles = W.k == S && W.d == 1 && IsMax<R>::value;  // max_tiles8
        if ((S != 4 || tiles) && n >= 8) {
          // G groups of eight windows side by side (outputs i0 .. i0 + 8G):
          // G independent chains hide the latency of each compare or add.
          // Max values only (no Taps) fold with max_fast8 first and again
          // with max_step8 only where that finds a NaN.
          // Group q starts at output min(i0 + 8q, last).
          auto group = [&](auto g_const, int64_t i0, int64_t last) POOLEXT_ALWAYS_INLINE {
            constexpr int G = decltype(g_const)::value;
            int64_t qo[G], qi[G];  // each group's first output and its input offset from i0's
            for (int q = 0; q < G; ++q) {
              qo[q] = std::min(i0 + 8 * q, last);
              qi[q] = (qo[q] - i0) * (S > 0 ? S : 1);
            }
            auto qin = [&](int q) POOLEXT_ALWAYS_INLINE { return qi[q]; };
            auto qout = [&](int q) POOLEXT_ALWAYS_INLINE { return qo[q]; };
            lanes::F8 v[G];
            lanes::I8 t[G];
            auto fold = [&](auto fast_const) POOLEXT_ALWAYS_INLINE {
              constexpr bool Fast = decltype(fast_const)::value;
              lanes::F8 seen[G];
              for (int q = 0; q < G; ++q) {
                v[q] = lanes::F8{} + (IsMax<R>::value ? lowest<float>() : 0.f);
                t[q] = lanes::I8{} + tap0;
                seen[q] = lanes::F8{};
              }
              for (int64_t jd = jd0; jd < jd1; ++jd) {
                for (int64_t jh = jh0; jh < jh1; ++jh) {
                  const scalar_t* p =
                      in_plane + ((D.start(od) + jd * D.d) * H.in + H.start(oh) + jh * H.d) * W.in +
                      W.start(ow0 + i0);
                  const auto tb = static_cast<int32_t>(g.tap(jd, jh, 0));
                  if constexpr (S != 1 && IsMax<R>::value) {
                    if (tiles) {
#pragma GCC unroll 4
                      for (int q = 0; q < G; ++q) {
                        lanes::F8 x;
                        lanes::I8 tw;
                        max_tiles8<S, Taps, Fast>(p + qin(q), x, tw, seen[q]);
                        if constexpr (Fast) {
                          v[q] = max_keep8(x, v[q]);
                        } else {
                          max_step8<Taps>(v[q], t[q], x, tw + tb);
                        }
                      }
                      continue;
                    }
                  }
                  if constexpr (S != 4) {
                    for (int64_t jw = 0; jw < W.k; ++jw) {
                      const lanes::I8 tk = lanes::I8{} + (tb + static_cast<int32_t>(jw));
#pragma GCC unroll 4
                      for (int q = 0; q < G; ++q) {
                        const scalar_t* qp = p + qin(q) + jw * W.d;
                        lanes::F8 x = load8<lanes::F8, float>(qp);
                        if constexpr (S == 2) {
                          const lanes::F8 x2 = load8<lanes::F8, float>(qp + 7);
                          x = POOLEXT_SHUF2(x, x2, 0, 2, 9, 11, 4, 6, 13, 15);
                        }
                        if constexpr (Fast) {
                          max_fast8(v[q], seen[q], x);
                        } else if constexpr (IsMax<R>::value) {
                          max_step8<Taps>(v[q], t[q], x, tk);
                        } else {
                          v[q] += x;
                        }
                      }
                    }
                  }
                }
              }
              if constexpr (Fast) return any_nan8(seen);
              return false;
            };
            if constexpr (!Taps && IsMax<R>::value) {
              if (fold(std::true_type{})) fold(std::false_type{});
            } else {
              fold(std::false_type{});
            }
            for (int q = 0; q < G; ++q) {
              if constexpr (S == 2) {
                if (!tiles) {
                  v[q] = POOLEXT_SHUF1(v[q], 0, 1, 4, 5, 2, 3, 6, 7);
                  t[q] = POOLEXT_SHUF1(t[q], 0, 1, 4, 5, 2, 3, 6, 7);
                }
              }
              if (direct != nullptr) {
                if constexpr (std::is_same<scalar_t, float>::value) {
                  store_f8(direct + r * W.out + ow0 + qout(q), v[q], stream);
                }
              } else {
                std::memcpy(vbuf + qout(q), &v[q], sizeof(v[q]));
                std::memcpy(tbuf + qout(q), &t[q], sizeof(t[q]));
              }
            }
          };
          // The last 9-31 outputs as four independent groups too, the last
          // ones ending at the chunk's end (outputs covered twice come out
          // the same both times).
          using One = std::integral_constant<int, 1>;
          using Four = std::integral_constant<int, 4>;
          for (; i + 32 <= n; i += 32) group(Four{}, i, i + 24);
          if (i < n) {
            if (n - i <= 8) {
              group(One{}, n - 8, n - 8);
            } else {
              group(Four{}, i, n - 8);
            }
            i = n;
          }
        }
      }
      if (i < n) {
        fold_init<R>(vbuf + i, tbuf + i, n - i, tap0);
        for (int64_t jd = jd0; jd < jd1; ++jd) {
          for (int64_t jh = jh0; jh < jh1; ++jh) {
            const scalar_t* row =
                in_plane + ((D.start(od) + jd * D.d) * H.in + H.start(oh) + jh * H.d) * W.in;
            for (int64_t jw = 0; jw < W.k; ++jw) {
              fold_tap<R, S>(vbuf + i, tbuf + i, row + W.start(ow0 + i) + jw * W.d, W.s, n - i,
                             static_cast<int32_t>(g.tap(jd, jh, jw)));
            }
          }
        }
      }
      // direct: the vector groups stored the whole chunk already (i == n).
      if (direct == nullptr || i < n) finish(r * W.out + ow0, n, vbuf, tbuf, od, oh, ow0, 1, 1);
    }
    for (int64_t ow = owb; ow < W.out; ++ow) border(ow);
  }
}

// Contiguous forward for rows of few outputs (global pooling and the like),
// where a row would fold its windows one at a time, each a serial chain of
// kernel_volume dependent steps.  Eight planes fold the same window together
// instead: eight independent chains, each output still folding its taps in
// row-major order (the same result as one at a time).
template <typename R, typename scalar_t, typename Finish>
void fold_planes(const scalar_t* in, const Geometry& g, Finish&& finish) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t P = 8;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t planes = g.N * g.C, OP = g.out_plane(), IP = g.in_plane();
  const int64_t blocks = div_ceil(planes, P);
  const TapRanges rd(D), rh(H), rw(W);
  at::parallel_for(0, blocks * OP, grain_for(P * g.kernel_volume()), [&](int64_t i0, int64_t i1) {
    std::vector<int64_t> toff(g.kernel_volume());
    std::vector<int32_t> tidx(g.kernel_volume());
    int64_t ntaps = 0, tap_sp = -1;  // the window toff/tidx hold (global pooling: always the one)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t blk = i / OP, sp = i % OP;
      const int64_t ow = sp % W.out, oh = (sp / W.out) % H.out, od = sp / (W.out * H.out);
      const int64_t jd0 = rd.lo[od], jd1 = rd.hi[od];
      const int64_t jh0 = rh.lo[oh], jh1 = rh.hi[oh];
      const int64_t jw0 = rw.lo[ow], jw1 = rw.hi[ow];
      if (sp != tap_sp) {
        ntaps = 0;
        for (int64_t jd = jd0; jd < jd1; ++jd) {
          for (int64_t jh = jh0; jh < jh1; ++jh) {
            const int64_t row = (D.start(od) + jd * D.d) * H.in + H.start(oh) + jh * H.d;
            for (int64_t jw = jw0; jw < jw1; ++jw) {
              toff[ntaps] = row * W.in + W.start(ow) + jw * W.d;
              tidx[ntaps] = static_cast<int32_t>(g.tap(jd, jh, jw));
              ++ntaps;
            }
          }
        }
        tap_sp = sp;
      }
      const int64_t p0 = blk * P, np = std::min(P, planes - p0);
      const scalar_t* base = in + p0 * IP;
      const auto tap0 = static_cast<int32_t>(g.tap(jd0, jh0, jw0));  // first_tap
      acc_t v[P];
      int32_t t[P];
      if constexpr (Lanes8<acc_t>::ok) {
        if (np == P) {  // the eight chains in the lanes of one register
          using V = typename Lanes8<acc_t>::V;
          using T = typename Lanes8<acc_t>::T;
          V vv;
          T tt = T{} + tap0;
          if constexpr (IsMax<R>::value) {
            vv = V{} + lowest<acc_t>();
            for (int64_t k = 0; k < ntaps; ++k) {
              const V x = gather8<V, acc_t>(base + toff[k], IP);
              max_step8<true>(vv, tt, x, T{} + tidx[k]);
            }
          } else {
            vv = V{};
            for (int64_t k = 0; k < ntaps; ++k) vv += gather8<V, acc_t>(base + toff[k], IP);
          }
          for (int64_t j = 0; j < P; ++j) {
            v[j] = vv[j];
            t[j] = static_cast<int32_t>(tt[j]);
          }
          finish(p0 * OP + sp, np, v, t, od, oh, ow, 0, OP);
          continue;
        }
      }
      for (int64_t j = 0; j < P; ++j) R::init(v[j], t[j], tap0);
      if (np == P) {
        for (int64_t k = 0; k < ntaps; ++k) {
          const scalar_t* src = base + toff[k];
          for (int64_t j = 0; j < P; ++j) {
            R::step(v[j], t[j], static_cast<acc_t>(src[j * IP]), tidx[k]);
          }
        }
      } else {
        for (int64_t k = 0; k < ntaps; ++k) {
          const scalar_t* src = base + toff[k];
          for (int64_t j = 0; j < np; ++j) {
            R::step(v[j], t[j], static_cast<acc_t>(src[j * IP]), tidx[k]);
          }
        }
      }
      finish(p0 * OP + sp, np, v, t, od, oh, ow, 0, OP);
    }
  });
}

// direct: the output itself, where finish would only store the values
// (float max pooling without taps): the vector groups store there, and
// finish sees only the outputs they did not cover.  stream: those stores are
// streaming ones (see stream_min_bytes).
template <typename R, typename scalar_t, typename Finish>
void fold_contig(const scalar_t* in, const Geometry& g, Finish&& finish, bool want_taps = true,
                 scalar_t* direct = nullptr, bool stream = false) {
  const Dim& W = g.dim[2];
  // Fewer than 4 windows of a row lie inside the input along W: the row
  // engine would fold every window on its own (see fold_contig_rows).
  const int64_t owa = std::min(div_ceil(W.p, W.s), W.out);
  const int64_t owb = std::max(owa, std::min(div_floor(W.in - 1 - (W.k - 1) * W.d + W.p, W.s) + 1, W.out));
  if (owb - owa < 4) {
    fold_planes<R>(in, g, finish);
    return;
  }
  // Stream only where the vector groups write whole rows from aligned
  // starts: a streaming store to a line that ordinary stores (border
  // windows, an overlapping last group) also write sends the line to memory
  // and back (the 3x3/s2/p1 stem forward took 2.5 times as long).
  stream = stream && owa == 0 && owb == W.out && W.out % 8 == 0 &&
           reinterpret_cast<uintptr_t>(direct) % 32 == 0;
  const int64_t rows = g.N * g.C * g.dim[0].out * g.dim[1].out;
  const int64_t work = g.dim[2].out * g.kernel_volume();
  const GeometryTaps gt(g);
  at::parallel_for(0, rows, grain_for(work), [&](int64_t r0, int64_t r1) {
    auto rows_s = [&](auto s_const) {
      constexpr int S = decltype(s_const)::value;
      if (!IsMax<R>::value || want_taps) {
        fold_contig_rows<R, S, true>(in, g, gt, r0, r1, finish, static_cast<scalar_t*>(nullptr), false);
      } else {
        fold_contig_rows<R, S, false>(in, g, gt, r0, r1, finish, direct, stream);
      }
    };
    switch (g.dim[2].s) {
      case 1: rows_s(std::integral_constant<int, 1>{}); break;
      case 2: rows_s(std::integral_constant<int, 2>{}); break;
      case 4:  // windows that tile the row (1d k4/s4) take max_tiles8, the rest a fixed stride
        if constexpr (std::is_floating_point<at::opmath_type<scalar_t>>::value) {
          rows_s(std::integral_constant<int, 4>{});
          break;
        }
        [[fallthrough]];
      default: fold_contig_rows<R, 0, true>(in, g, gt, r0, r1, finish, static_cast<scalar_t*>(nullptr), false); break;
    }
    stream_fence(stream);
  });
}
