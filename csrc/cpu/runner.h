// The Runner (core/run.h) of the CPU ops that run element functors: the
// functor called for every element under at::parallel_for.
#pragma once

#include <ATen/Parallel.h>

#include <cstdint>
#include <limits>

namespace poolext {
namespace cpu {

struct ParallelRunner {
  bool fits_int32(int64_t max_numel) const {
    return max_numel <= std::numeric_limits<int32_t>::max();
  }
  template <typename Op>
  void operator()(const Op& op, int64_t n) const {
    using index_t = typename Op::index_type;
    at::parallel_for(0, n, 2048, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) op(static_cast<index_t>(i));
    });
  }
};

}  // namespace cpu
}  // namespace poolext
