// The CPU kernels, one copy per instruction set (kernels_base.cpp,
// kernels_avx2.cpp), and the run-time choice between them.
#pragma once

#include <ATen/core/Tensor.h>

#include "../core/geometry.h"

namespace poolext {
namespace cpu {

#define POOLEXT_CPU_DECLARE(ISA)                                                                  \
  namespace ISA {                                                                                 \
  void max_pool_fwd(const at::Tensor& x, at::Tensor& out, at::Tensor& argmax, at::Tensor& indices, \
                    const Geometry& g, bool channels_last, bool with_argmax, bool with_indices,   \
                    bool keep_nan_bits);                                                          \
  void max_pool_bwd(const at::Tensor& go, const at::Tensor& amc, at::Tensor& grad_input,          \
                    const Geometry& g, bool channels_last);                                       \
  void max_pool_gather(const at::Tensor& src, const at::Tensor& amc, at::Tensor& out,             \
                       const Geometry& g, bool channels_last);                                    \
  void avg_pool_fwd(const at::Tensor& x, at::Tensor& out, const Geometry& g, bool channels_last,  \
                    bool count_include_pad, int64_t dov);                                         \
  void avg_pool_bwd(const at::Tensor& go, at::Tensor& grad_input, const Geometry& g,              \
                    bool channels_last, bool count_include_pad, int64_t dov);                     \
  }

POOLEXT_CPU_DECLARE(base)
POOLEXT_CPU_DECLARE(avx2)
#undef POOLEXT_CPU_DECLARE

// Whether kernels_avx2.cpp was compiled for AVX2 (GCC or clang on x86-64).
bool avx2_built();

// AVX2 kernels when built and the processor has AVX2 and FMA, unless the
// environment variable POOLEXT_CPU_ISA=base asks for the baseline ones.
// Decided once per process.
bool use_avx2();

#define POOLEXT_CPU_KERNEL(fn, ...)                                  \
  (::poolext::cpu::use_avx2() ? ::poolext::cpu::avx2::fn(__VA_ARGS__) \
                              : ::poolext::cpu::base::fn(__VA_ARGS__))

}  // namespace cpu
}  // namespace poolext
