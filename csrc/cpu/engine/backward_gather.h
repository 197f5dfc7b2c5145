// Backward as a gather: every input element sums, in increasing output
// order, what the outputs whose window covers it send (Dim::for_each_cover),
// and is written once; no atomics.  Contiguous rows (phased buffers over W),
// disjoint windows, plane runs (global pooling), and the channels_last gather.
//
// Part of the CPU engine (see kernels_impl.h, which includes the parts in
// order inside its per-ISA namespace, after every header they need; no part
// includes anything itself).

// Covers of one dim as a compact table: for input i, entries [off[i], off[i+1])
// of (o, j), in increasing o.
struct CoverTable {
  std::vector<int64_t> off, o, j;
  explicit CoverTable(const Dim& dm) {
    off.reserve(dm.in + 1);
    off.push_back(0);
    for (int64_t i = 0; i < dm.in; ++i) {
      dm.for_each_cover(i, [&](int64_t oo, int64_t jj) {
        o.push_back(oo);
        j.push_back(jj);
      });
      off.push_back(static_cast<int64_t>(o.size()));
    }
  }
  // The most outputs covering one input.
  int64_t most() const {
    int64_t m = 0;
    for (size_t i = 0; i + 1 < off.size(); ++i) m = std::max(m, off[i + 1] - off[i]);
    return m;
  }
};

// Contiguous backward.  Each input row (plane, id, ih) is summed in a local
// buffer from the output rows that cover it, in increasing output order (so
// every element sums its contributions in torch's order), then written once.
// The policy supplies, per covering output row, the value output ow sends to
// its window's tap t:  pol.set_row(orow, od, oh) then pol.val(ow, t), or
// pol.val8(ow, t) for outputs ow..ow+7 as Lanes8<acc_t>::V.
//
// With stride s along W, tap jw of output ow lands on column ow*s + jw*d - p,
// so the buffer is kept in s phases (column m*s + ph at acc[ph*M + m]): each
// tap then adds into consecutive entries of one phase, a unit-stride loop the
// compiler vectorises, and the phases are interleaved once at the end.
template <int S, typename acc_t, typename scalar_t, typename Policy>
void gather_contig_rows(scalar_t* grad_in, const Geometry& g, const CoverTable& cd,
                        const CoverTable& ch, int64_t r0, int64_t r1, Policy& pol, acc_t* acc) {
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t s = S > 0 ? S : W.s;
  const int64_t M = div_ceil(W.in, s);  // entries per phase
  // Taps jw whose column jw*d - p can fall inside [0, W.in) for some output,
  // each with its buffer offset and range of outputs [lo, hi).
  const int64_t jw_lo = std::max<int64_t>(0, div_ceil(W.p - (W.out - 1) * s, W.d));
  const int64_t jw_hi = std::min<int64_t>(W.k - 1, div_ceil(W.in + W.p, W.d) - 1);
  struct TapRun {
    int64_t jw, offset, lo, hi;
  };
  std::vector<TapRun> taps;
  for (int64_t jw = jw_hi; jw >= jw_lo; --jw) {  // increasing ow for each element
    const int64_t base = jw * W.d - W.p;          // column of output 0's tap jw
    const int64_t q = div_floor(base, s);         // base = q*s + ph
    taps.push_back({jw, (base - q * s) * M + q, std::max<int64_t>(0, div_ceil(-base, s)),
                    std::min(W.out, div_ceil(W.in - base, s))});
  }
  int64_t ih = r0 % H.in, id = (r0 / H.in) % D.in, plane = r0 / (H.in * D.in);
  for (int64_t r = r0; r < r1; ++r) {
    if (r > r0 && ++ih == H.in) {  // the next row (counted, not divided)
      ih = 0;
      if (++id == D.in) {
        id = 0;
        ++plane;
      }
    }
    scalar_t* out_row = grad_in + r * W.in;
    if (cd.off[id] == cd.off[id + 1] || ch.off[ih] == ch.off[ih + 1]) {
      std::fill(out_row, out_row + W.in, scalar_t(0));
      continue;
    }
    std::fill(acc, acc + s * M, acc_t(0));
    for (int64_t a = cd.off[id]; a < cd.off[id + 1]; ++a) {
      for (int64_t b = ch.off[ih]; b < ch.off[ih + 1]; ++b) {
        const int64_t od = cd.o[a], oh = ch.o[b];
        pol.set_row((plane * D.out + od) * H.out + oh, od, oh);
        const int64_t tdh = g.tap(cd.j[a], ch.j[b], 0);
        for (const TapRun& tr : taps) {
          const int32_t t = static_cast<int32_t>(tdh + tr.jw);
          acc_t* __restrict__ dst = acc + tr.offset;  // dst[ow] is output ow's tap jw
          const int64_t hi = tr.hi;
          int64_t ow = tr.lo;
          if constexpr (Lanes8<acc_t>::ok) {
            using V = typename Lanes8<acc_t>::V;
            for (; ow + 8 <= hi; ow += 8) {
              V d;
              std::memcpy(&d, dst + ow, sizeof(V));
              d += pol.val8(ow, t);
              std::memcpy(dst + ow, &d, sizeof(V));
            }
          }
          for (; ow < hi; ++ow) dst[ow] += pol.val(ow, t);
        }
      }
    }
    if (s == 1) {
      store_n(out_row, acc, W.in, 1);
    } else {
      int64_t m0 = 0;
      if constexpr (Lanes8<acc_t>::ok && S == 2) {
        // Interleave the two phases sixteen columns at a time.
        using V = typename Lanes8<acc_t>::V;
        for (; m0 + 8 <= W.in / 2; m0 += 8) {
          store_interleaved2(out_row + 2 * m0, load8<V, acc_t>(acc + m0),
                             load8<V, acc_t>(acc + M + m0));
        }
      } else if constexpr (Lanes8<acc_t>::ok && S == 4) {
        // The four phases, thirty-two columns at a time.
        using V = typename Lanes8<acc_t>::V;
        for (; m0 + 8 <= W.in / 4; m0 += 8) {
          store_interleaved4(out_row + 4 * m0, load8<V, acc_t>(acc + m0),
                             load8<V, acc_t>(acc + M + m0), load8<V, acc_t>(acc + 2 * M + m0),
                             load8<V, acc_t>(acc + 3 * M + m0));
        }
      }
      for (int64_t ph = 0; ph < s; ++ph) {
        const acc_t* src = acc + ph * M;
        const int64_t m1 = div_ceil(W.in - ph, s);
        for (int64_t m = m0; m < m1; ++m) out_row[m * s + ph] = static_cast<scalar_t>(src[m]);
      }
    }
  }
}

// Contiguous backward when no two windows share an input element along any
// dim (non-overlapping windows, global windows).  Each input element then has
// at most one covering output and takes 0 + what that output sends it (0 if
// none; the same sum as gather_contig_rows forms), with no buffer and no
// per-tap loops.  Along W an input row splits into runs of consecutive
// elements fed by one output with consecutive taps (or by none), found once.
template <typename scalar_t, typename Policy>
void gather_disjoint(scalar_t* grad_in, const Geometry& g, const CoverTable& cd,
                     const CoverTable& ch, const CoverTable& cw, const Policy& policy) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  struct Run {
    int64_t b, e, ow, jw;  // elements [b, e) take taps jw.. of output ow (ow < 0: none)
  };
  std::vector<Run> runs;
  for (int64_t iw = 0; iw < W.in; ++iw) {
    int64_t ow = -1, jw = 0;
    if (cw.off[iw] < cw.off[iw + 1]) {
      ow = cw.o[cw.off[iw]];
      jw = cw.j[cw.off[iw]];
    }
    if (!runs.empty() && runs.back().ow == ow &&
        (ow < 0 || jw == runs.back().jw + (iw - runs.back().b))) {
      runs.back().e = iw + 1;
    } else {
      runs.push_back({iw, iw + 1, ow, jw});
    }
  }
  const int64_t rows = g.N * g.C * D.in * H.in;
  at::parallel_for(0, rows, grain_for(W.in + 16), [&](int64_t r0, int64_t r1) {
    Policy pol = policy;
    int64_t ih = r0 % H.in, id = (r0 / H.in) % D.in, plane = r0 / (H.in * D.in);
    int64_t last = -1;  // output row pol is set to
    for (int64_t r = r0; r < r1; ++r) {
      scalar_t* out_row = grad_in + r * W.in;
      if (cd.off[id] == cd.off[id + 1] || ch.off[ih] == ch.off[ih + 1]) {
        std::fill(out_row, out_row + W.in, scalar_t(0));
      } else {
        const int64_t od = cd.o[cd.off[id]], oh = ch.o[ch.off[ih]];
        const int64_t orow = (plane * D.out + od) * H.out + oh;
        if (orow != last) {
          pol.set_row(orow, od, oh);
          last = orow;
        }
        const int64_t tdh = g.tap(cd.j[cd.off[id]], ch.j[ch.off[ih]], 0);
        for (const Run& run : runs) {
          if (run.ow < 0) {
            std::fill(out_row + run.b, out_row + run.e, scalar_t(0));
            continue;
          }
          const auto t0 = static_cast<int32_t>(tdh + run.jw - run.b);
          for (int64_t i = run.b; i < run.e; ++i) {
            out_row[i] = static_cast<scalar_t>(acc_t(0) + pol.val(run.ow, t0 + static_cast<int32_t>(i)));
          }
        }
      }
      if (++ih == H.in) {
        ih = 0;
        if (++id == D.in) {
          id = 0;
          ++plane;
        }
      }
    }
  });
}

// Disjoint windows whose value does not depend on the tap (averages): a
// plane splits into runs of consecutive elements that take the same value,
// 0 + val(ow) of one output (or 0), found once for all planes.  Used when the
// runs are long (global pooling: one run per plane), so that each plane costs
// a few divisions and fills.
template <typename scalar_t, typename Policy>
bool gather_plane_runs(scalar_t* grad_in, const Geometry& g, const CoverTable& cd,
                       const CoverTable& ch, const CoverTable& cw, const Policy& policy) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  struct Run {
    int64_t b, e, orow, ow;  // elements [b, e) of a plane take output (orow, ow); orow < 0: none
  };
  auto cover = [](const CoverTable& ct, int64_t i) {
    return ct.off[i] < ct.off[i + 1] ? ct.o[ct.off[i]] : int64_t(-1);
  };
  const int64_t IP = g.in_plane();
  std::vector<Run> runs;
  for (int64_t id = 0; id < D.in; ++id) {
    for (int64_t ih = 0; ih < H.in; ++ih) {
      const int64_t od = cover(cd, id), oh = cover(ch, ih);
      for (int64_t iw = 0; iw < W.in; ++iw) {
        const int64_t ow = cover(cw, iw);
        const bool none = od < 0 || oh < 0 || ow < 0;
        const int64_t orow = none ? -1 : od * H.out + oh;
        const int64_t e = (id * H.in + ih) * W.in + iw;
        if (!runs.empty() && runs.back().orow == orow && (none || runs.back().ow == ow)) {
          runs.back().e = e + 1;
        } else {
          if (static_cast<int64_t>(runs.size()) * 8 > IP) return false;  // short runs
          runs.push_back({e, e + 1, orow, none ? -1 : ow});
        }
      }
    }
  }
  const int64_t planes = g.N * g.C;
  at::parallel_for(0, planes, grain_for(IP + 8 * static_cast<int64_t>(runs.size())),
                   [&](int64_t q0, int64_t q1) {
    Policy pol = policy;
    for (int64_t plane = q0; plane < q1; ++plane) {
      scalar_t* out = grad_in + plane * IP;
      int64_t last = -1;  // output row pol is set to
      for (const Run& run : runs) {
        scalar_t v = scalar_t(0);
        if (run.orow >= 0) {
          if (run.orow != last) {
            pol.set_row(plane * D.out * H.out + run.orow, run.orow / H.out, run.orow % H.out);
            last = run.orow;
          }
          v = static_cast<scalar_t>(acc_t(0) + pol.val(run.ow, 0));
        }
        std::fill(out + run.b, out + run.e, v);
      }
    }
  });
  return true;
}

// TapFree: pol.val(ow, t) does not depend on t.
template <bool TapFree, typename scalar_t, typename Policy>
void gather_contig(scalar_t* grad_in, const Geometry& g, const Policy& policy) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const CoverTable cd(D), ch(H);
  {
    const CoverTable cw(W);
    if (cd.most() <= 1 && ch.most() <= 1 && cw.most() <= 1) {
      if (TapFree && gather_plane_runs(grad_in, g, cd, ch, cw, policy)) return;
      // Few outputs per row: gather_contig_rows would spend its time on
      // per-row set-up.
      if (W.out < 4) {
        gather_disjoint(grad_in, g, cd, ch, cw, policy);
        return;
      }
    }
  }
  const int64_t rows = g.N * g.C * D.in * H.in;
  const int64_t work = W.in + W.out * W.k * ((D.k + D.s - 1) / D.s) * ((H.k + H.s - 1) / H.s);
  at::parallel_for(0, rows, grain_for(work), [&](int64_t r0, int64_t r1) {
    std::vector<acc_t> acc(W.s * div_ceil(W.in, W.s));
    Policy pol = policy;
    switch (W.s) {
      case 1: gather_contig_rows<1>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
      case 2: gather_contig_rows<2>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
      case 4: gather_contig_rows<4>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
      default: gather_contig_rows<0>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
    }
  });
}

// channels_last backward gather.  For input position (n, id, ih, iw) the
// policy turns each covering output, in increasing output order, into a
// Cover: pol.cover(opos, tap, od, oh, ow), opos flat over N*OD*OH*OW.  Each
// channel c of the position then sums, from 0 and in that order, what the
// covers send it: blocks of 8 channels in registers across all covers with
// pol.take8(cover, c) (Lanes8<acc_t>::V), the rest with pol.take1(cover, c);
// each element is written once.
template <typename scalar_t, typename Policy>
void gather_cl(scalar_t* grad_in, const Geometry& g, const Policy& pol) {
  using acc_t = at::opmath_type<scalar_t>;
  using Cover = typename Policy::Cover;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const CoverTable cd(D), ch(H), cw(W);
  const int64_t C = g.C;
  const int64_t positions = g.N * g.in_plane();
  const int64_t most = std::max<int64_t>(1, cd.most() * ch.most() * cw.most());
  at::parallel_for(0, positions, grain_for(C * 4), [&](int64_t p0, int64_t p1) {
    std::vector<Cover> cov(most);
    // The (d, h) covers of the current input row: output row base, tap base.
    struct RowCover {
      int64_t obase, tbase, od, oh;
    };
    std::vector<RowCover> rcov(std::max<int64_t>(1, cd.most() * ch.most()));
    int64_t nrow = 0;
    int64_t iw = p0 % W.in, ih = (p0 / W.in) % H.in, id = (p0 / (W.in * H.in)) % D.in;
    int64_t nb = p0 / g.in_plane();
    bool new_row = true;
    for (int64_t pos = p0; pos < p1; ++pos) {
      if (new_row) {
        nrow = 0;
        for (int64_t a = cd.off[id]; a < cd.off[id + 1]; ++a) {
          for (int64_t b = ch.off[ih]; b < ch.off[ih + 1]; ++b) {
            rcov[nrow++] = {((nb * D.out + cd.o[a]) * H.out + ch.o[b]) * W.out,
                            g.tap(cd.j[a], ch.j[b], 0), cd.o[a], ch.o[b]};
          }
        }
        new_row = false;
      }
      int64_t ncov = 0;
      for (int64_t m = 0; m < nrow; ++m) {
        const RowCover& rc = rcov[m];
        for (int64_t c = cw.off[iw]; c < cw.off[iw + 1]; ++c) {
          cov[ncov++] = pol.cover(rc.obase + cw.o[c], rc.tbase + cw.j[c], rc.od, rc.oh, cw.o[c]);
        }
      }
      scalar_t* dst = grad_in + pos * C;
      int64_t c = 0;
      if constexpr (Lanes8<acc_t>::ok) {
        using V = typename Lanes8<acc_t>::V;
        for (; c + 32 <= C; c += 32) {  // four independent sums in flight
          V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{};
          for (int64_t k = 0; k < ncov; ++k) {
            a0 += pol.take8(cov[k], c);
            a1 += pol.take8(cov[k], c + 8);
            a2 += pol.take8(cov[k], c + 16);
            a3 += pol.take8(cov[k], c + 24);
          }
          store16(dst + c, a0, a1);
          store16(dst + c + 16, a2, a3);
        }
        for (; c + 8 <= C; c += 8) {
          V acc = V{};
          for (int64_t k = 0; k < ncov; ++k) acc += pol.take8(cov[k], c);
          store8(dst + c, acc);
        }
      }
      for (; c < C; ++c) {
        acc_t acc = acc_t(0);
        for (int64_t k = 0; k < ncov; ++k) acc += pol.take1(cov[k], c);
        dst[c] = static_cast<scalar_t>(acc);
      }
      if (++iw == W.in) {
        iw = 0;
        new_row = true;
        if (++ih == H.in) {
          ih = 0;
          if (++id == D.in) {
            id = 0;
            ++nb;
          }
        }
      }
    }
  });
}
