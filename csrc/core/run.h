// How an element functor runs over [0, n): the Runner interface, and the
// choice of layout and index width that every op taking functors makes.
//
// A Runner provides
//   bool fits_int32(int64_t max_numel)  whether int32 flat indices are safe,
//   void operator()(const Op&, int64_t n)  calls op(i) for every i in [0, n),
// where Op::index_type is the flat index type.  cpu/adaptive.cpp passes a
// parallel_for loop, cuda/common.cuh a grid-stride kernel launch, and
// tests/cuda_emulation.cpp a serial loop on the host.
#pragma once

#include <cstdint>
#include <type_traits>

namespace poolext {

// Runs make(layout, index) over n elements, where layout is
// std::bool_constant<channels_last> and index an int32_t or int64_t value
// whose type the functor uses for flat indices below max_numel.
template <typename Runner, typename Make>
void run_elements(const Runner& run, bool channels_last, int64_t n, int64_t max_numel,
                  Make&& make) {
  auto with_index = [&](auto index) {
    if (channels_last) {
      run(make(std::true_type{}, index), n);
    } else {
      run(make(std::false_type{}, index), n);
    }
  };
  if (run.fits_int32(max_numel)) {
    with_index(int32_t{});
  } else {
    with_index(int64_t{});
  }
}

}  // namespace poolext
