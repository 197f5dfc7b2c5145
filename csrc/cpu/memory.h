// Fresh output buffers and the cost of their first touch.
//
// A large CPU tensor comes from the C library as fresh pages, and writing it
// the first time takes one page fault per 4 KiB page: on a virtual machine
// that costs more than the pooling itself (51 MB: 32 ms to allocate and fill
// with 4 KiB pages, 8-10 ms with 2 MiB pages, measured here).  Where
// transparent huge pages are in "madvise" mode, the kernel only uses them
// for ranges marked MADV_HUGEPAGE, so poolext marks the 2 MiB-aligned part
// of each large output it allocates, before writing it.  A hint only: the
// memory stays the tensor's, and the kernel may ignore it.
// POOLEXT_HUGEPAGES=0 turns it off.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace poolext {
namespace cpu {

inline bool hugepages_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("POOLEXT_HUGEPAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

// Marks the 2 MiB-aligned interior of t's storage for huge pages when t is
// at least 4 MiB.  Returns t.
inline const at::Tensor& advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const size_t bytes = t.nbytes();
  if (bytes >= 2 * kHuge && hugepages_enabled()) {
    const auto p = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t b = (p + kHuge - 1) & ~(kHuge - 1), e = (p + bytes) & ~(kHuge - 1);
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);  // a hint: errors ignored
  }
#endif
  return t;
}

}  // namespace cpu
}  // namespace poolext
