// Reduce policies and their vector steps: MaxReduce and SumReduce (how a
// window folds its taps into a (value, tap) pair), the scalar and eight-lane
// max steps with the NaN rule of DESIGN.md section 2, the values-only max
// with its NaN detector, the tree max of windows that tile a row, and the
// per-call tables (chunk size, parallel grain, tap ranges) the forward
// engines share.
//
// Part of the CPU engine (see kernels_impl.h, which includes the parts in
// order inside its per-ISA namespace, after every header they need; no part
// includes anything itself).

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

template <typename R>
struct IsMax : std::false_type {};
template <typename acc_t>
struct IsMax<MaxReduce<acc_t>> : std::true_type {};

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

// The tap ranges of every output coordinate of each dim.
struct GeometryTaps {
  TapRanges d, h, w;
  explicit GeometryTaps(const Geometry& g) : d(g.dim[0]), h(g.dim[1]), w(g.dim[2]) {}
};

// One max_takes step on eight lanes (Lanes8 types): v, t take x, tk where
// x > v or x is NaN.  Float lanes under AVX2: two compares, an or and blends
// (the generic form compiles to five vector operations and a second blend).
template <bool Taps, typename V, typename T>
inline void max_step8(V& v, T& t, V x, T tk) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  if constexpr (std::is_same<V, lanes::F8>::value) {
    const __m256 m = _mm256_or_ps(_mm256_cmp_ps(x, v, _CMP_GT_OQ), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    v = _mm256_blendv_ps(v, x, m);
    if constexpr (Taps) t = (T)_mm256_blendv_ps((__m256)t, (__m256)tk, m);
    return;
  }
#endif
  const T take = (x > v) | (x != x);
  v = take ? x : v;
  if constexpr (Taps) t = take ? tk : t;
}

// A values-only max step on eight float lanes, for max pooling that keeps
// no argmax or indices.  x replaces v where x > v (max_ps(x, v) keeps v on
// ties, so a signed zero comes out as the sequential fold leaves it), in one
// operation instead of max_step8's four.  It may drop a NaN, so `seen` adds
// up every x: a NaN anywhere leaves a NaN in `seen` (so may an overflow to
// inf - inf, which only costs a redo), and the caller folds the same windows
// again with max_step8 when any_nan8 finds one.
inline lanes::F8 max_keep8(lanes::F8 x, lanes::F8 v) {  // x > v ? x : v
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  return _mm256_max_ps(x, v);
#else
  return x > v ? x : v;
#endif
}

inline void max_fast8(lanes::F8& v, lanes::F8& seen, lanes::F8 x) {
  v = max_keep8(x, v);
  seen += x;
}

// The channels_last fold's step: v, t take x, tk where x > v (a NaN x is
// skipped, so the caller checks its loads with unordered8 and folds again
// with max_step8 where one turns up).  One compare, a max and a blend,
// against max_step8's two compares, an or and two blends.
template <bool Taps>
inline void max_fast_taps8(lanes::F8& v, lanes::I8& t, lanes::F8 x, lanes::I8 tk) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  if constexpr (Taps) {
    t = (lanes::I8)_mm256_blendv_ps((__m256)t, (__m256)tk, _mm256_cmp_ps(x, v, _CMP_GT_OQ));
  }
  v = _mm256_max_ps(x, v);
#else
  if constexpr (Taps) t = x > v ? tk : t;
  v = x > v ? x : v;
#endif
}

// All ones in the lanes where a or b is NaN.
inline lanes::I8 unordered8(lanes::F8 a, lanes::F8 b) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  return (lanes::I8)_mm256_cmp_ps(a, b, _CMP_UNORD_Q);
#else
  return (a != a) | (b != b);
#endif
}

// Whether any lane of m is nonzero.
inline bool any_lane8(lanes::I8 m) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#else
  for (int i = 0; i < 8; ++i) {
    if (m[i] != 0) return true;
  }
  return false;
#endif
}

// Whether any lane of the N detectors is NaN (their sum is NaN then).
template <int N>
inline bool any_nan8(const lanes::F8 (&seen)[N]) {
  lanes::F8 s = seen[0];
  for (int i = 1; i < N; ++i) s += seen[i];
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  return _mm256_movemask_ps(_mm256_cmp_ps(s, s, _CMP_UNORD_Q)) != 0;
#else
  for (int i = 0; i < 8; ++i) {
    if (s[i] != s[i]) return true;
  }
  return false;
#endif
}

// Max over windows that tile a row (kernel == stride == S along W, S = 2 or
// 4, no dilation): eight windows from the 8*S consecutive elements at p, as
// a tree of pairwise steps.  Each step takes the later half when max_takes
// it over the earlier, so the tree gives the sequential fold's value and tap
// (ties keep the first maximum, the last NaN wins).  tw: each window's
// winning tap along W (left alone unless Taps).  Fast (values only): the
// steps are max_keep8 and every loaded element is added into `seen` (see
// max_fast8), so the value is right unless `seen` ends up NaN.
template <int S, bool Taps, bool Fast, typename scalar_t>
inline void max_tiles8(const scalar_t* p, lanes::F8& v, lanes::I8& tw, lanes::F8& seen) {
  using lanes::F8;
  using lanes::I8;
  static_assert(!(Taps && Fast), "the fast step keeps no taps");
  auto pairs = [](F8 a, F8 b, I8 ta, I8 tb, int32_t half, F8& m, I8& t) {
    // lanes [a0 a2 b0 b2 | a4 a6 b4 b6] against [a1 a3 b1 b3 | a5 a7 b5 b7]
    const F8 e = POOLEXT_SHUF2(a, b, 0, 2, 8, 10, 4, 6, 12, 14);
    const F8 o = POOLEXT_SHUF2(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
    if constexpr (Fast) {
      m = max_keep8(o, e);
      return;
    }
    const I8 te = POOLEXT_SHUF2(ta, tb, 0, 2, 8, 10, 4, 6, 12, 14);
    const I8 to = POOLEXT_SHUF2(ta, tb, 1, 3, 9, 11, 5, 7, 13, 15) + half;
    m = e;
    t = te;
    max_step8<Taps>(m, t, o, to);
  };
  const F8 a = load8<F8, float>(p), b = load8<F8, float>(p + 8);
  F8 m1;
  I8 t1{};
  pairs(a, b, I8{}, I8{}, 1, m1, t1);  // [p0 p1 p4 p5 | p2 p3 p6 p7], p = pair
  if constexpr (S == 2) {
    if constexpr (Fast) seen += a + b;
    v = POOLEXT_SHUF1(m1, 0, 1, 4, 5, 2, 3, 6, 7);
    if constexpr (Taps) tw = POOLEXT_SHUF1(t1, 0, 1, 4, 5, 2, 3, 6, 7);
  } else {
    static_assert(S == 4, "pairs of pairs");
    const F8 c = load8<F8, float>(p + 16), d = load8<F8, float>(p + 24);
    if constexpr (Fast) seen += (a + b) + (c + d);
    F8 m2, m;
    I8 t2{}, t{};
    pairs(c, d, I8{}, I8{}, 1, m2, t2);
    pairs(m1, m2, t1, t2, 2, m, t);  // [g0 g2 g4 g6 | g1 g3 g5 g7], g = group of 4
    v = POOLEXT_SHUF1(m, 0, 4, 1, 5, 2, 6, 3, 7);
    if constexpr (Taps) tw = POOLEXT_SHUF1(t, 0, 4, 1, 5, 2, 6, 3, 7);
  }
}
