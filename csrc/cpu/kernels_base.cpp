// The CPU kernels for the baseline instruction set, and the run-time choice.
#include "kernels_common.h"

#include <cstdlib>
#include <cstring>

#define POOLEXT_CPU_ISA base
#include "kernels_impl.h"

namespace poolext {
namespace cpu {

bool use_avx2() {
  static const bool yes = [] {
    const char* want = std::getenv("POOLEXT_CPU_ISA");
    if (want != nullptr && std::strcmp(want, "base") == 0) return false;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return avx2_built() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  }();
  return yes;
}

}  // namespace cpu
}  // namespace poolext
