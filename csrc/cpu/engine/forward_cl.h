// channels_last (NDHWC) forward: each output position folds its window's
// taps over blocks of channels, eight channels to a register.
//
// Part of the CPU engine (see kernels_impl.h, which includes the parts in
// order inside its per-ISA namespace, after every header they need; no part
// includes anything itself).

// B blocks of 8 channels at base folded over a window's taps (element
// offsets toff, tap indices tidx) into vbuf/tbuf.  Without Taps the tap
// buffer is left alone (the caller keeps no argmax or indices).
template <typename R, int B, bool Taps, typename scalar_t, typename acc_t>
inline void fold_cl_block(const scalar_t* base, const std::vector<int64_t>& toff,
                          const std::vector<int32_t>& tidx, int64_t ntaps, int32_t tap0,
                          acc_t* vbuf, int32_t* tbuf, bool stream = false) {
  using V = typename Lanes8<acc_t>::V;
  using T = typename Lanes8<acc_t>::T;
  V v[B];
  T t[B];
  // Float max folds with max_fast_taps8 first, and again with max_step8
  // only where a loaded element was NaN.
  constexpr bool kFast = IsMax<R>::value && std::is_same<acc_t, float>::value;
  auto fold = [&](auto fast_const) POOLEXT_ALWAYS_INLINE {
    constexpr bool Fast = decltype(fast_const)::value;
    for (int b = 0; b < B; ++b) {
      v[b] = IsMax<R>::value ? V{} + lowest<acc_t>() : V{};
      t[b] = T{} + tap0;
    }
    lanes::I8 nan{};
    for (int64_t k = 0; k < ntaps; ++k) {
      const scalar_t* p = base + toff[k];
      if constexpr (IsMax<R>::value) {
        const T tk = T{} + tidx[k];
        V x[B];
        for (int b = 0; b < B; ++b) x[b] = load8<V, acc_t>(p + 8 * b);
        for (int b = 0; b < B; ++b) {
          if constexpr (Fast) {
            max_fast_taps8<Taps>(v[b], t[b], x[b], tk);
          } else {
            max_step8<Taps>(v[b], t[b], x[b], tk);
          }
        }
        if constexpr (Fast) {  // one compare finds a NaN in either of two loads
          for (int b = 0; b + 1 < B; b += 2) nan |= unordered8(x[b], x[b + 1]);
          if constexpr (B % 2 == 1) nan |= unordered8(x[B - 1], x[B - 1]);
        }
      } else {
        for (int b = 0; b < B; ++b) v[b] += load8<V, acc_t>(p + 8 * b);
      }
    }
    if constexpr (Fast) return any_lane8(nan);
    return false;
  };
  if constexpr (kFast) {
    if (fold(std::true_type{})) fold(std::false_type{});
  } else {
    fold(std::false_type{});
  }
  for (int b = 0; b < B; ++b) {
    if constexpr (std::is_same<V, lanes::F8>::value) {
      store_f8(vbuf + 8 * b, v[b], stream);
    } else {
      std::memcpy(vbuf + 8 * b, &v[b], sizeof(V));
    }
    if constexpr (Taps && IsMax<R>::value) {
      if constexpr (sizeof(T) == 8 * sizeof(int32_t)) {
        // One vector store (a memcpy from &t[b] kept t in memory in the loop).
        typedef int32_t I8u __attribute__((vector_size(32), aligned(4)));
        *reinterpret_cast<I8u*>(tbuf + 8 * b) = t[b];
      } else {
        for (int i = 0; i < 8; ++i) tbuf[8 * b + i] = static_cast<int32_t>(t[b][i]);
      }
    }
  }
}

// channels_last forward.  `in` is N x D x H x W x C; runs are chunks of
// channels at one output position.  want_taps = false: finish reads no taps
// (inference max pooling, average pooling), so the vector path tracks none.
// direct, stream: as for fold_contig.
template <typename R, typename scalar_t, typename Finish>
void fold_cl(const scalar_t* in, const Geometry& g, Finish&& finish, bool want_taps = true,
             scalar_t* direct = nullptr, bool stream = false) {
  using acc_t = at::opmath_type<scalar_t>;
  const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
  const int64_t C = g.C;
  const int64_t positions = g.N * g.out_plane();
  const TapRanges rd(D), rh(H), rw(W);
  // Whole aligned blocks only (see fold_contig).
  stream = stream && C % 8 == 0 && reinterpret_cast<uintptr_t>(direct) % 32 == 0;
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
          // Blocks of 8 channels stay in registers across the whole window,
          // four blocks at a time where the chunk allows (independent chains
          // for the core to overlap), then one at a time.
          if (want_taps) {
            for (; c + 32 <= n; c += 32) fold_cl_block<R, 4, true>(in_n + c0 + c, toff, tidx, ntaps, tap0, vbuf + c, tbuf + c);
            for (; c + 8 <= n; c += 8) fold_cl_block<R, 1, true>(in_n + c0 + c, toff, tidx, ntaps, tap0, vbuf + c, tbuf + c);
          } else {
            // direct: the blocks store into the output itself (float: see fold_contig).
            acc_t* dst = direct != nullptr ? reinterpret_cast<acc_t*>(direct) + pos * C + c0 : vbuf;
            for (; c + 32 <= n; c += 32) fold_cl_block<R, 4, false>(in_n + c0 + c, toff, tidx, ntaps, tap0, dst + c, tbuf + c, stream);
            for (; c + 8 <= n; c += 8) fold_cl_block<R, 1, false>(in_n + c0 + c, toff, tidx, ntaps, tap0, dst + c, tbuf + c, stream);
          }
        }
        if (c < n) {
          fold_init<R>(vbuf + c, tbuf + c, n - c, tap0);
          for (int64_t k = 0; k < ntaps; ++k) {
            fold_tap<R, 1>(vbuf + c, tbuf + c, in_n + toff[k] + c0 + c, 1, n - c, tidx[k]);
          }
        }
        const int64_t stored = direct != nullptr ? c : 0;  // channels already in the output
        if (stored < n) {
          finish(pos * C + c0 + stored, n - stored, vbuf + stored, tbuf + stored, od, oh, ow, 0, 1);
        }
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
    stream_fence(stream);
  });
}
