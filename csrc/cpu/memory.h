// Output buffers for the CPU kernels, and the cost of their first touch.
//
// A large CPU tensor comes from the C library as fresh pages (glibc maps
// every block over 32 MiB afresh and unmaps it when freed), and writing it
// the first time takes one page fault per page: on a virtual machine that
// costs more than the pooling itself (51 MB: 32 ms to allocate and fill with
// 4 KiB pages, 8-10 ms with 2 MiB pages, measured here), while refilling a
// buffer already touched takes 3 ms.  A training loop asks for the same
// sizes every step, so poolext keeps the large blocks it freed and hands
// them out again:
//
//  - Blocks of 4 MiB or more come from the cache; smaller ones from torch's
//    CPU allocator, as at::empty would.
//  - A block is reused for a request of at least 4/5 of its size, and sizes
//    are rounded up to 2 MiB.
//  - At most POOLEXT_CPU_CACHE_MB (default 512) MiB of idle blocks are kept;
//    the oldest go first.  0 turns the cache off.  poolext.empty_cache()
//    returns every idle block to the system.
//  - Fresh blocks are 2 MiB-aligned and, where transparent huge pages are in
//    "madvise" mode, marked MADV_HUGEPAGE (POOLEXT_HUGEPAGES=0 turns that
//    off), so even a first touch takes one fault per 2 MiB.
//
// The tensors are ordinary resizable CPU tensors: only who frees their
// memory differs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <vector>

namespace poolext {
namespace cpu {

// An uninitialised CPU tensor of the given sizes, dtype and memory format
// (options.memory_format_opt()), its memory from the block cache when large.
at::Tensor empty_output(c10::IntArrayRef sizes, const at::TensorOptions& options);

// {idle bytes held, idle blocks, bytes in use by live tensors, hits, misses,
// limit in bytes}.
std::vector<int64_t> cache_stats();

// Returns every idle block to the system.
void empty_cache();

}  // namespace cpu
}  // namespace poolext
