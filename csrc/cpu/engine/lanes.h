// Vector lanes: eight-lane compiler vector types for float and double (and
// same-width tap indices), compact argmax lanes, bfloat16/half conversions
// eight at a time, NaN narrowing as torch's CPU kernels narrow, widening
// loads and narrowing stores, and the streaming stores of the values-only
// forward.  Everything the other parts build their inner loops from.
//
// Part of the CPU engine (see kernels_impl.h, which includes the parts in
// order inside its per-ISA namespace, after every header they need; no part
// includes anything itself).

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
