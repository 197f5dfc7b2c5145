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

// Eight compact argmax entries compared with a tap: a mask in lanes of T
// (-1 where equal, 0 elsewhere).
template <typename arg_t>
struct ArgLanes;
template <>
struct ArgLanes<uint8_t> {
  typedef uint8_t A __attribute__((vector_size(8)));
};
template <>
struct ArgLanes<uint16_t> {
  typedef uint16_t A __attribute__((vector_size(16)));
};
template <>
struct ArgLanes<int32_t> {
  typedef int32_t A __attribute__((vector_size(32)));
};
template <typename T, typename arg_t>
inline T arg_eq8(const arg_t* a, arg_t t) {
  typename ArgLanes<arg_t>::A av;
  std::memcpy(&av, a, sizeof(av));
  return __builtin_convertvector(av == t, T);
}

// x in the lanes where mask is all ones, +0 where it is zero: one and (the
// form `mask ? x : V{}` compiles to a compare with zero and an andnot).
template <typename V, typename T>
inline V keep8(V x, T mask) {
  return (V)((T)x & mask);
}

template <typename R>
struct IsMax : std::false_type {};
template <typename acc_t>
struct IsMax<MaxReduce<acc_t>> : std::true_type {};

// Lane types for converting eight bfloat16 / half elements at once.
namespace lanes {
typedef float F8 __attribute__((vector_size(32)));
typedef int32_t I8 __attribute__((vector_size(32)));
typedef uint32_t U8 __attribute__((vector_size(32)));
typedef uint16_t H8 __attribute__((vector_size(16)));

inline F8 bits_to_f(U8 u) {
  F8 f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
inline U8 f_to_bits(F8 f) {
  U8 u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// bfloat16 -> float: the upper half of the float's bits.
inline F8 bf16_to_f(H8 h) { return bits_to_f(__builtin_convertvector(h, U8) << 16); }

// float -> bfloat16 bits in 32-bit lanes, rounding to nearest even; right
// for every lane but NaN.
inline U8 f_to_bf16_bits(F8 f) {
  const U8 u = f_to_bits(f);
  return (u + (((u >> 16) & 1u) + 0x7FFFu)) >> 16;
}

// float -> bfloat16, rounding to nearest even; NaN becomes 0x7FC0 (as c10 does).
inline H8 f_to_bf16(F8 f) {
  const U8 r = f_to_bf16_bits(f);
  const U8 q = (f != f) ? U8{} + 0x7FC0u : r;
  return __builtin_convertvector(q, H8);
}

// half -> float: c10's fp16_ieee_to_fp32_value, eight lanes at a time.
inline F8 half_to_f(H8 h) {
  const U8 w = __builtin_convertvector(h, U8) << 16;
  const U8 sign = w & 0x80000000u;
  const U8 two_w = w + w;
  const F8 normalized = bits_to_f((two_w >> 4) + (0xE0u << 23)) * bits_to_f(U8{} + (15u << 23));
  const F8 denormalized = bits_to_f((two_w >> 17) | (126u << 23)) - 0.5f;
  const U8 mag = (two_w < (1u << 27)) ? f_to_bits(denormalized) : f_to_bits(normalized);
  return bits_to_f(sign | mag);
}

// float -> half: c10's fp16_ieee_from_fp32_value (round to nearest even),
// eight lanes at a time.  Both multiplies scale by powers of two, which is
// exact (or overflows as intended), so a contraction of the second one with
// the add into an FMA rounds the same as the scalar code.
inline H8 f_to_half(F8 f) {
  const U8 w = f_to_bits(f);
  const F8 absf = bits_to_f(w & 0x7FFFFFFFu);
  F8 base = (absf * bits_to_f(U8{} + (239u << 23))) * bits_to_f(U8{} + (17u << 23));
  const U8 shl1_w = w + w;
  const U8 sign = w & 0x80000000u;
  U8 bias = shl1_w & 0xFF000000u;
  bias = (bias < 0x71000000u) ? U8{} + 0x71000000u : bias;
  base = bits_to_f((bias >> 1) + 0x07800000u) + base;
  const U8 bits = f_to_bits(base);
  const U8 nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  const U8 r = (sign >> 16) | ((shl1_w > 0xFF000000u) ? U8{} + 0x7E00u : nonsign);
  return __builtin_convertvector(r, H8);
}
}  // namespace lanes

// A float NaN narrowed to half as F16C's vcvtps2ph does (and so torch's
// CPU kernels on x86 with AVX2): sign, quiet bit and the top ten payload bits.
inline uint16_t half_nan_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, sizeof(w));
  return static_cast<uint16_t>(((w >> 16) & 0x8000u) | 0x7E00u | ((w >> 13) & 0x3FFu));
}

// A NaN result narrowed as torch's CPU kernels narrow it: half keeps the
// payload (half_nan_bits), bfloat16 gets the canonical NaN (as static_cast).
template <typename scalar_t>
inline scalar_t narrow_nan(float f) {
  if constexpr (std::is_same<scalar_t, at::Half>::value) {
    return at::Half(half_nan_bits(f), at::Half::from_bits());
  } else {
    return static_cast<scalar_t>(f);
  }
}

template <typename scalar_t>
constexpr bool is_half_type =
    std::is_same<scalar_t, at::BFloat16>::value || std::is_same<scalar_t, at::Half>::value;

// Eight consecutive elements widened to acc_t lanes.
template <typename V, typename acc_t, typename scalar_t>
inline V load8(const scalar_t* p) {
  V v;
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  // One widening load and a shift (the generic form below compiles to four
  // shuffles here).
  if constexpr (std::is_same<scalar_t, at::BFloat16>::value && std::is_same<V, lanes::F8>::value) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return (V)_mm256_slli_epi32(w, 16);
  }
#endif
  if constexpr (std::is_same<scalar_t, acc_t>::value) {
    std::memcpy(&v, p, sizeof(V));
  } else if constexpr (is_half_type<scalar_t> && std::is_same<V, lanes::F8>::value) {
    lanes::H8 h;
    std::memcpy(&h, p, sizeof(h));
    if constexpr (std::is_same<scalar_t, at::BFloat16>::value) {
      v = lanes::bf16_to_f(h);
    } else {
      v = lanes::half_to_f(h);
    }
  } else {
    acc_t tmp[8];
    for (int i = 0; i < 8; ++i) tmp[i] = static_cast<acc_t>(p[i]);
    std::memcpy(&v, tmp, sizeof(V));
  }
  return v;
}

// Eight elements p[0], p[stride], ..., p[7 * stride] widened to acc_t lanes.
template <typename V, typename acc_t, typename scalar_t>
inline V gather8(const scalar_t* p, int64_t stride) {
  return V{static_cast<acc_t>(p[0]),          static_cast<acc_t>(p[stride]),
           static_cast<acc_t>(p[2 * stride]), static_cast<acc_t>(p[3 * stride]),
           static_cast<acc_t>(p[4 * stride]), static_cast<acc_t>(p[5 * stride]),
           static_cast<acc_t>(p[6 * stride]), static_cast<acc_t>(p[7 * stride])};
}

// Eight acc_t lanes narrowed to scalar_t (rounded exactly as static_cast).
template <typename scalar_t, typename V>
inline void store8(scalar_t* p, V v) {
  if constexpr (std::is_floating_point<scalar_t>::value && sizeof(V) == 8 * sizeof(scalar_t)) {
    std::memcpy(p, &v, sizeof(V));
  } else if constexpr (is_half_type<scalar_t> && std::is_same<V, lanes::F8>::value) {
    lanes::H8 h;
    if constexpr (std::is_same<scalar_t, at::BFloat16>::value) {
      h = lanes::f_to_bf16(v);
    } else {
      h = lanes::f_to_half(v);
    }
    std::memcpy(p, &h, sizeof(h));
  } else {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<scalar_t>(v[i]);
  }
}

// Sixteen lanes narrowed to scalar_t: store8(p, a) and store8(p + 8, b).
// bfloat16 under AVX2: both rounded, then one pack and one permute, and a
// single NaN test for the pair (a NaN pair goes the way of store8).
template <typename scalar_t, typename V>
inline void store16(scalar_t* p, V a, V b) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  if constexpr (std::is_same<scalar_t, at::BFloat16>::value && std::is_same<V, lanes::F8>::value) {
    if (_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q)) == 0) {
      // No NaN: every rounded lane fits 16 bits, so the pack is exact; it
      // interleaves 128-bit halves (a0-3 b0-3 | a4-7 b4-7), the permute undoes that.
      const __m256i ra = (__m256i)lanes::f_to_bf16_bits(a), rb = (__m256i)lanes::f_to_bf16_bits(b);
      const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(ra, rb), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), w);
      return;
    }
  }
#endif
  store8(p, a);
  store8(p + 8, b);
}

// Two or four sets of eight lanes interleaved and narrowed:
// dst[K * i + j] = v_j[i] for lanes i < 8 and sets j < K (16 or 32 elements).
template <typename scalar_t, typename V>
inline void store_interleaved2(scalar_t* dst, V a, V b) {
  store8(dst, V(__builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)));
  store8(dst + 8, V(__builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)));
}
template <typename scalar_t, typename V>
inline void store_interleaved4(scalar_t* dst, V a, V b, V c, V d) {
  const V ab0 = __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);   // a0 b0 .. a3 b3
  const V ab1 = __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15); // a4 b4 .. a7 b7
  const V cd0 = __builtin_shufflevector(c, d, 0, 8, 1, 9, 2, 10, 3, 11);
  const V cd1 = __builtin_shufflevector(c, d, 4, 12, 5, 13, 6, 14, 7, 15);
  store8(dst, V(__builtin_shufflevector(ab0, cd0, 0, 1, 8, 9, 2, 3, 10, 11)));
  store8(dst + 8, V(__builtin_shufflevector(ab0, cd0, 4, 5, 12, 13, 6, 7, 14, 15)));
  store8(dst + 16, V(__builtin_shufflevector(ab1, cd1, 0, 1, 8, 9, 2, 3, 10, 11)));
  store8(dst + 24, V(__builtin_shufflevector(ab1, cd1, 4, 5, 12, 13, 6, 7, 14, 15)));
}

// n values narrowed to scalar_t at dst[0], dst[es], dst[2*es], ...
template <typename scalar_t, typename acc_t>
inline void store_n(scalar_t* __restrict__ dst, const acc_t* __restrict__ v, int64_t n,
                    int64_t es) {
  int64_t i = 0;
  if (es == 1) {
    if constexpr (Lanes8<acc_t>::ok && !std::is_same<scalar_t, acc_t>::value) {
      using V = typename Lanes8<acc_t>::V;
      for (; i + 16 <= n; i += 16) store16(dst + i, load8<V, acc_t>(v + i), load8<V, acc_t>(v + i + 8));
      for (; i + 8 <= n; i += 8) store8(dst + i, load8<V, acc_t>(v + i));
    }
    for (; i < n; ++i) dst[i] = static_cast<scalar_t>(v[i]);
  } else {
    for (; i < n; ++i) dst[i * es] = static_cast<scalar_t>(v[i]);
  }
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

// Streaming stores for the values-only forward.  A pass that moves more
// bytes than the last-level cache holds leaves none of its output there for
// the next layer, and an ordinary store first reads the line it writes (read
// for ownership), so the output's bytes cross the memory bus twice.  Above
// POOLEXT_STREAM_MIN_BYTES (input plus output; default 32 MiB, the cache of
// the machines this was measured on, where sysconf reports the host's) the
// engines store aligned vectors with non-temporal stores and fence at the
// end of each task, before parallel_for returns.  Same values either way.
inline int64_t stream_min_bytes() {
  static const int64_t v = [] {
    const char* e = std::getenv("POOLEXT_STREAM_MIN_BYTES");
    return e != nullptr && *e != '\0' ? static_cast<int64_t>(std::atoll(e)) : int64_t{32} << 20;
  }();
  return v;
}

inline void store_f8(float* p, lanes::F8 v, bool stream) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  if (stream && (reinterpret_cast<uintptr_t>(p) & 31) == 0) {
    _mm256_stream_ps(p, v);
    return;
  }
#endif
  std::memcpy(p, &v, sizeof(v));
}

inline void stream_fence(bool stream) {
#if defined(POOLEXT_AVX2) && POOLEXT_AVX2
  if (stream) _mm_sfence();
#endif
  (void)stream;
}

// For lambdas whose locals (vector accumulators) must stay in registers.
#ifndef POOLEXT_ALWAYS_INLINE
#if defined(__GNUC__)
#define POOLEXT_ALWAYS_INLINE __attribute__((always_inline))
#else
#define POOLEXT_ALWAYS_INLINE
#endif
#endif

// Lane shuffles of eight 32-bit lanes by constant indices (0-7 name a's
// lanes, 8-15 b's).
#if defined(__clang__)
#define POOLEXT_SHUF2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#define POOLEXT_SHUF1(a, ...) __builtin_shufflevector(a, a, __VA_ARGS__)
#else
#define POOLEXT_SHUF2(a, b, ...) __builtin_shuffle(a, b, lanes::I8{__VA_ARGS__})
#define POOLEXT_SHUF1(a, ...) __builtin_shuffle(a, lanes::I8{__VA_ARGS__})
#endif

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
