// Kernel launch for the element functors (elements.h, unpool.h and
// core/adaptive.h): the Runner of core/run.h for CUDA.
//
// One thread per element with a grid-stride loop: the grid is capped at a few
// waves of full occupancy, so any element count launches (no gridDim limit
// applies) and each thread's loop stays short.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace poolext {
namespace cuda {

constexpr int kThreads = 256;
// With no minimum, ptxas aims at 4 blocks of 256 threads per SM (64
// registers) and spills in the gather kernels, which want up to 80.
constexpr int kMinBlocksPerSm = 2;

// An Op may ask for more resident blocks (fewer registers) with
// `static constexpr int kMinBlocks`.
template <typename Op, typename = void>
struct MinBlocks {
  static constexpr int value = kMinBlocksPerSm;
};
template <typename Op>
struct MinBlocks<Op, std::void_t<decltype(Op::kMinBlocks)>> {
  static constexpr int value = Op::kMinBlocks;
};

template <typename Op>
__global__ void __launch_bounds__(kThreads, MinBlocks<Op>::value)
    for_each_element(const Op op, typename Op::index_type n) {
  using index_t = typename Op::index_type;
  const index_t stride = static_cast<index_t>(blockDim.x) * static_cast<index_t>(gridDim.x);
  for (index_t i = static_cast<index_t>(blockIdx.x) * static_cast<index_t>(blockDim.x) +
                   static_cast<index_t>(threadIdx.x);
       i < n; i += stride) {
    op(i);
  }
}

// The Runner (core/run.h) for the current CUDA device and stream.
class CudaRunner {
 public:
  CudaRunner() {
    const cudaDeviceProp* prop = at::cuda::getCurrentDeviceProperties();
    max_blocks_ = static_cast<int64_t>(prop->multiProcessorCount) *
                  (prop->maxThreadsPerMultiProcessor / kThreads) * kWaves;
  }

  // int32 flat indices are safe when no index, nor an index plus the
  // grid-stride step, passes INT32_MAX.
  bool fits_int32(int64_t max_numel) const {
    return max_numel <= std::numeric_limits<int32_t>::max() - max_blocks_ * kThreads;
  }

  template <typename Op>
  void operator()(const Op& op, int64_t n) const {
    using index_t = typename Op::index_type;
    const int64_t blocks = std::min(max_blocks_, (n + kThreads - 1) / kThreads);
    for_each_element<<<static_cast<unsigned>(blocks), kThreads, 0,
                       at::cuda::getCurrentCUDAStream()>>>(op, static_cast<index_t>(n));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

 private:
  static constexpr int64_t kWaves = 4;
  int64_t max_blocks_;
};

// Every tensor argument must live on the device of the first one: a CPU
// tensor next to a CUDA one still dispatches here, and its pointer must never
// reach a kernel.
inline void check_device(const char* op, const char* name, const at::Tensor& t,
                         const char* ref_name, const at::Tensor& ref) {
  TORCH_CHECK(ref.is_cuda(), op, ": ", ref_name, " must be a CUDA tensor, got one on ",
              ref.device());
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but ",
              ref_name, " is on ", ref.device());
}

}  // namespace cuda
}  // namespace poolext
