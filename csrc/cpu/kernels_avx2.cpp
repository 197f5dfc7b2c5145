// The CPU kernels compiled for AVX2 + FMA (x86-64 with GCC or clang; elsewhere
// a second baseline copy that use_avx2() never picks).
#include "kernels_common.h"

#if defined(__x86_64__) && defined(__clang__)
#define POOLEXT_AVX2 1
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__x86_64__) && defined(__GNUC__)
#define POOLEXT_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#else
#define POOLEXT_AVX2 0
#endif

#define POOLEXT_CPU_ISA avx2
#include "kernels_impl.h"

#if POOLEXT_AVX2 && defined(__clang__)
#pragma clang attribute pop
#elif POOLEXT_AVX2
#pragma GCC pop_options
#endif

namespace poolext {
namespace cpu {
bool avx2_built() { return POOLEXT_AVX2; }
}  // namespace cpu
}  // namespace poolext
