// CPU traversal engines shared by max and average pooling.
//
// Forward: every output folds the in-bounds taps of its window in row-major
// (d, h, w) order.  The contiguous engine walks an output row at a time and,
// for the windows that lie wholly inside the input along W, folds one tap over
// a chunk of consecutive outputs, so the inner loop is a unit- or fixed-stride
// loop the compiler vectorises.  The channels_last engine folds over C.
//
// Backward: every input element gathers from the outputs whose window covers
// it (Dim::for_each_cover), in increasing output order; no atomics, one write.
// Included by kernels_impl.h inside its per-ISA namespace, after every
// header this needs.

constexpr int64_t kChunk = 256;  // outputs (or channels) folded per buffer pass

// Grain for at::parallel_for: about `target` elementary steps per task.
inline int64_t grain_for(int64_t work_per_item, int64_t target = 1 << 15) {
  return std::max<int64_t>(1, target / std::max<int64_t>(1, work_per_item));
}

// Reduce policies fold taps into (value, tap) buffers.  A window starts from
// init(v, t, tap0), tap0 being its first in-bounds tap (or, for a window with
// none, the tap DESIGN.md section 2 reports), then takes step() for each
// in-bounds tap in row-major order.
template <typename acc_t>
struct MaxReduce {
  // Starting from the lowest value with the first tap keeps the first
  // maximum on ties, lets the last NaN win, and reports the first element of
  // a window of lowest values (or of an empty window).
  static inline void init(acc_t& v, int32_t& t, int32_t tap0) {
    v = lowest<acc_t>();
    t = tap0;
  }
  static inline void step(acc_t& v, int32_t& t, acc_t x, int32_t tap) {
    const bool take = max_takes(x, v);
    v = take ? x : v;
    t = take ? tap : t;
  }
};

template <typename acc_t>
struct SumReduce {
  static inline void init(acc_t& v, int32_t&, int32_t) { v = acc_t(0); }
  static inline void step(acc_t& v, int32_t&, acc_t x, int32_t) { v += x; }
};

// Eight lanes of acc_t (and of same-width tap indices) as compiler vector
// types: the channels_last engine keeps a block of them in registers across
// all taps of a window.  float and double only; other types take the
// buffered path.
template <typename acc_t>
struct Lanes8 {
  static constexpr bool ok = false;
};
template <>
struct Lanes8<float> {
  static constexpr bool ok = true;
  typedef float V __attribute__((vector_size(32)));
  typedef int32_t T __attribute__((vector_size(32)));
};
template <>
struct Lanes8<double> {
  static constexpr bool ok = true;
  typedef double V __attribute__((vector_size(64)));
  typedef int64_t T __attribute__((vector_size(64)));
};

template <typename R>
struct IsMax : std::false_type {};
template <typename acc_t>
struct IsMax<MaxReduce<acc_t>> : std::true_type {};

// Eight consecutive elements widened to acc_t lanes.
template <typename V, typename acc_t, typename scalar_t>
inline V load8(const scalar_t* p) {
  V v;
  if constexpr (std::is_same<scalar_t, acc_t>::value) {
    std::memcpy(&v, p, sizeof(V));
  } else {
    acc_t tmp[8];
    for (int i = 0; i < 8; ++i) tmp[i] = static_cast<acc_t>(p[i]);
    std::memcpy(&v, tmp, sizeof(V));
  }
  return v;
}

// Fold one tap over n outputs whose inputs are src[0], src[S], src[2S], ...
template <typename R, int S, typename scalar_t, typename acc_t>
inline void fold_tap(acc_t* __restrict__ v, int32_t* __restrict__ t,
                     const scalar_t* __restrict__ src, int64_t stride, int64_t n, int32_t tap) {
  const int64_t s = S > 0 ? S : stride;
  for (int64_t i = 0; i < n; ++i) R::step(v[i], t[i], static_cast<acc_t>(src[i * s]), tap);
}

template <typename R, typename acc_t>
inline void fold_init(acc_t* v, int32_t* t, int64_t n, int32_t tap0) {
  for (int64_t i = 0; i < n; ++i) R::init(v[i], t[i], tap0);
}

// In-bounds tap range [lo[o], hi[o]) of every window of one dim, computed
// once per call (Dim::tap_lo/tap_hi divide).
struct TapRanges {
  std::vector<int64_t> lo, hi;
  explicit TapRanges(const Dim& dm) : lo(dm.out), hi(dm.out) {
    for (int64_t o = 0; o < dm.out; ++o) {
      lo[o] = dm.tap_lo(o);
      hi[o] = dm.tap_hi(o);
    }
  }
};

// Both forward engines hand results over in runs:
//   finish(e, n, v, t, od, oh, ow, ow_step)
// covers outputs e .. e+n-1 of the output tensor (flat, in its memory order)
// with values v[0..n) and taps t[0..n); output e+i sits at window
// (od, oh, ow + i*ow_step).  All windows of a run have the same shape along
// W (interior runs; border windows come as runs of 1), so anything that
// depends on the window's clipping, such as an average's divisor, is the same
// for the whole run.

// Contiguous forward.  `in` holds N*C planes of D*H*W.
template <typename R, int S, typename scalar_t, typename Finish>
void fold_contig_rows(const scalar_t* in, const Geometry& g, int64_t r0, int64_t r1,
                      Finish&& finish) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  acc_t vbuf[kChunk];
  int32_t tbuf[kChunk];
  // Interior along W: windows entirely inside [0, W.in).
  int64_t owa = std::min(div_ceil(W.p, W.s), W.out);
  int64_t owb = div_floor(W.in - 1 - (W.k - 1) * W.d + W.p, W.s) + 1;
  owb = std::max(owa, std::min(owb, W.out));
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t oh = r % H.out;
    const int64_t od = (r / H.out) % D.out;
    const scalar_t* in_plane = in + (r / (H.out * D.out)) * g.in_plane();
    const int64_t jd0 = D.tap_lo(od), jd1 = D.tap_hi(od);
    const int64_t jh0 = H.tap_lo(oh), jh1 = H.tap_hi(oh);
    auto border = [&](int64_t ow) {
      const int64_t jw0 = W.tap_lo(ow), jw1 = W.tap_hi(ow);
      acc_t v;
      int32_t t;
      R::init(v, t, static_cast<int32_t>(g.first_tap(od, oh, ow)));
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
      finish(r * W.out + ow, 1, &v, &t, od, oh, ow, 1);
    };
    if (jd0 >= jd1 || jh0 >= jh1) {  // every window of this row is empty
      for (int64_t ow = 0; ow < W.out; ++ow) border(ow);
      continue;
    }
    if (owb - owa < 4) {  // few outputs per row (global pooling): one window at a time
      for (int64_t ow = 0; ow < W.out; ++ow) border(ow);
      continue;
    }
    for (int64_t ow = 0; ow < owa; ++ow) border(ow);
    for (int64_t ow0 = owa; ow0 < owb; ow0 += kChunk) {
      const int64_t n = std::min(kChunk, owb - ow0);
      fold_init<R>(vbuf, tbuf, n, static_cast<int32_t>(g.first_tap(od, oh, ow0)));
      for (int64_t jd = jd0; jd < jd1; ++jd) {
        for (int64_t jh = jh0; jh < jh1; ++jh) {
          const scalar_t* row =
              in_plane + ((D.start(od) + jd * D.d) * H.in + H.start(oh) + jh * H.d) * W.in;
          for (int64_t jw = 0; jw < W.k; ++jw) {
            fold_tap<R, S>(vbuf, tbuf, row + W.start(ow0) + jw * W.d, W.s, n,
                           static_cast<int32_t>(g.tap(jd, jh, jw)));
          }
        }
      }
      finish(r * W.out + ow0, n, vbuf, tbuf, od, oh, ow0, 1);
    }
    for (int64_t ow = owb; ow < W.out; ++ow) border(ow);
  }
}

template <typename R, typename scalar_t, typename Finish>
void fold_contig(const scalar_t* in, const Geometry& g, Finish&& finish) {
  const int64_t rows = g.N * g.C * g.dim[0].out * g.dim[1].out;
  const int64_t work = g.dim[2].out * g.kernel_volume();
  at::parallel_for(0, rows, grain_for(work), [&](int64_t r0, int64_t r1) {
    switch (g.dim[2].s) {
      case 1: fold_contig_rows<R, 1>(in, g, r0, r1, finish); break;
      case 2: fold_contig_rows<R, 2>(in, g, r0, r1, finish); break;
      default: fold_contig_rows<R, 0>(in, g, r0, r1, finish); break;
    }
  });
}

// channels_last forward.  `in` is N x D x H x W x C; runs are chunks of
// channels at one output position.
template <typename R, typename scalar_t, typename Finish>
void fold_cl(const scalar_t* in, const Geometry& g, Finish&& finish) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t C = g.C;
  const int64_t positions = g.N * g.out_plane();
  const TapRanges rd(D), rh(H), rw(W);
  at::parallel_for(0, positions, grain_for(C * g.kernel_volume()), [&](int64_t p0, int64_t p1) {
    acc_t vbuf[kChunk];
    int32_t tbuf[kChunk];
    std::vector<int64_t> toff(g.kernel_volume());
    std::vector<int32_t> tidx(g.kernel_volume());
    int64_t ntaps = 0;
    // (nb, od, oh, ow) of position p0, then stepped along without division.
    int64_t ow = p0 % W.out, oh = (p0 / W.out) % H.out, od = (p0 / (W.out * H.out)) % D.out;
    int64_t nb = p0 / g.out_plane();
    for (int64_t pos = p0; pos < p1; ++pos) {
      const scalar_t* in_n = in + nb * g.in_plane() * C;
      const int64_t jd0 = rd.lo[od], jd1 = rd.hi[od];
      const int64_t jh0 = rh.lo[oh], jh1 = rh.hi[oh];
      const int64_t jw0 = rw.lo[ow], jw1 = rw.hi[ow];
      const auto tap0 = static_cast<int32_t>(g.tap(jd0, jh0, jw0));  // first_tap
      // The window's in-bounds taps: element offset (times C) and tap index.
      ntaps = 0;
      for (int64_t jd = jd0; jd < jd1; ++jd) {
        for (int64_t jh = jh0; jh < jh1; ++jh) {
          const int64_t row = (D.start(od) + jd * D.d) * H.in + H.start(oh) + jh * H.d;
          for (int64_t jw = jw0; jw < jw1; ++jw) {
            toff[ntaps] = (row * W.in + W.start(ow) + jw * W.d) * C;
            tidx[ntaps] = static_cast<int32_t>(g.tap(jd, jh, jw));
            ++ntaps;
          }
        }
      }
      for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
        const int64_t n = std::min(kChunk, C - c0);
        int64_t c = 0;
        if constexpr (Lanes8<acc_t>::ok) {
          // Blocks of 8 channels stay in registers across the whole window.
          using V = typename Lanes8<acc_t>::V;
          using T = typename Lanes8<acc_t>::T;
          for (; c + 8 <= n; c += 8) {
            const scalar_t* base = in_n + c0 + c;
            V v;
            T t = T{} + tap0;
            if constexpr (IsMax<R>::value) {
              v = V{} + lowest<acc_t>();
              for (int64_t k = 0; k < ntaps; ++k) {
                const V x = load8<V, acc_t>(base + toff[k]);
                const T take = (x > v) | (x != x);
                v = take ? x : v;
                t = take ? T{} + tidx[k] : t;
              }
            } else {
              v = V{};
              for (int64_t k = 0; k < ntaps; ++k) v += load8<V, acc_t>(base + toff[k]);
            }
            for (int i = 0; i < 8; ++i) {
              vbuf[c + i] = v[i];
              tbuf[c + i] = static_cast<int32_t>(t[i]);
            }
          }
        }
        if (c < n) {
          fold_init<R>(vbuf + c, tbuf + c, n - c, tap0);
          for (int64_t k = 0; k < ntaps; ++k) {
            fold_tap<R, 1>(vbuf + c, tbuf + c, in_n + toff[k] + c0 + c, 1, n - c, tidx[k]);
          }
        }
        finish(pos * C + c0, n, vbuf, tbuf, od, oh, ow, 0);
      }
      if (++ow == W.out) {
        ow = 0;
        if (++oh == H.out) {
          oh = 0;
          if (++od == D.out) {
            od = 0;
            ++nb;
          }
        }
      }
    }
  });
}

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
};

// Contiguous backward.  Each input row (plane, id, ih) is summed in a local
// buffer from the output rows that cover it, in increasing output order (so
// every element sums its contributions in torch's order), then written once.
// The policy supplies, per covering output row, the value output ow sends to
// its window's tap t:  pol.set_row(orow, od, oh) then pol.val(ow, t).
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
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t ih = r % H.in;
    const int64_t id = (r / H.in) % D.in;
    const int64_t plane = r / (H.in * D.in);
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
          for (int64_t ow = tr.lo; ow < tr.hi; ++ow) dst[ow] += pol.val(ow, t);
        }
      }
    }
    if (s == 1) {
      for (int64_t i = 0; i < W.in; ++i) out_row[i] = static_cast<scalar_t>(acc[i]);
    } else {
      for (int64_t ph = 0; ph < s; ++ph) {
        const acc_t* src = acc + ph * M;
        const int64_t m1 = div_ceil(W.in - ph, s);
        for (int64_t m = 0; m < m1; ++m) out_row[m * s + ph] = static_cast<scalar_t>(src[m]);
      }
    }
  }
}

template <typename scalar_t, typename Policy>
void gather_contig(scalar_t* grad_in, const Geometry& g, const Policy& policy) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const CoverTable cd(D), ch(H);
  const int64_t rows = g.N * g.C * D.in * H.in;
  const int64_t work = W.in + W.out * W.k * ((D.k + D.s - 1) / D.s) * ((H.k + H.s - 1) / H.s);
  at::parallel_for(0, rows, grain_for(work), [&](int64_t r0, int64_t r1) {
    std::vector<acc_t> acc(W.s * div_ceil(W.in, W.s));
    Policy pol = policy;
    switch (W.s) {
      case 1: gather_contig_rows<1>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
      case 2: gather_contig_rows<2>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
      default: gather_contig_rows<0>(grad_in, g, cd, ch, r0, r1, pol, acc.data()); break;
    }
  });
}

// channels_last backward gather.  For input position (n, id, ih, iw) and a
// chunk of channels it calls take(acc, opos, tap, c0, n) for every covering
// output position opos (flat over N*OD*OH*OW) to add into acc[0..n).
template <typename scalar_t, typename Take>
void gather_cl(scalar_t* grad_in, const Geometry& g, Take&& take) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const CoverTable cd(D), ch(H), cw(W);
  const int64_t C = g.C;
  const int64_t positions = g.N * g.in_plane();
  at::parallel_for(0, positions, grain_for(C * 4), [&](int64_t p0, int64_t p1) {
    acc_t acc[kChunk];
    for (int64_t pos = p0; pos < p1; ++pos) {
      const int64_t iw = pos % W.in;
      const int64_t ih = (pos / W.in) % H.in;
      const int64_t id = (pos / (W.in * H.in)) % D.in;
      const int64_t nb = pos / g.in_plane();
      for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
        const int64_t n = std::min(kChunk, C - c0);
        std::fill(acc, acc + n, acc_t(0));
        for (int64_t a = cd.off[id]; a < cd.off[id + 1]; ++a) {
          for (int64_t b = ch.off[ih]; b < ch.off[ih + 1]; ++b) {
            for (int64_t c = cw.off[iw]; c < cw.off[iw + 1]; ++c) {
              const int64_t opos = ((nb * D.out + cd.o[a]) * H.out + ch.o[b]) * W.out + cw.o[c];
              take(acc, opos, g.tap(cd.j[a], ch.j[b], cw.j[c]), c0, n, cd.o[a], ch.o[b], cw.o[c]);
            }
          }
        }
        scalar_t* dst = grad_in + pos * C + c0;
        for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<scalar_t>(acc[i]);
      }
    }
  });
}

