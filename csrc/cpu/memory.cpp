// The block cache behind poolext's large CPU outputs (see memory.h).
#include "memory.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Allocator.h>
#include <c10/core/DispatchKeySet.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <unordered_map>

#if defined(__linux__)
#include <pthread.h>
#include <sys/mman.h>
#endif

namespace poolext {
namespace cpu {
namespace {

constexpr size_t kHuge = size_t{1} << 21;  // 2 MiB
constexpr size_t kMinCached = 2 * kHuge;  // smaller requests go to torch's allocator

bool env_flag_off(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "0") == 0;
}

size_t cache_limit_from_env() {
  const char* v = std::getenv("POOLEXT_CPU_CACHE_MB");
  if (v == nullptr || *v == '\0') return size_t{512} << 20;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(v, &end, 10);
  TORCH_CHECK(end != v && *end == '\0', "POOLEXT_CPU_CACHE_MB must be a whole number of MiB, got '",
              v, "'");
  return static_cast<size_t>(mb) << 20;
}

void* fresh_block(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, bytes) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool huge = !env_flag_off("POOLEXT_HUGEPAGES");
  if (huge) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: errors ignored
#endif
  return p;
}

void release(void* p) { std::free(p); }

void cached_delete(void* p);

class BlockCache final : public c10::Allocator {
 public:
  BlockCache() : limit_(cache_limit_from_env()) {
#if defined(__linux__)
    // A fork while another thread holds the lock would leave the child's
    // copy locked forever: hold it across fork() instead.
    pthread_atfork([] { instance().mu_.lock(); }, [] { instance().mu_.unlock(); },
                   [] { instance().mu_.unlock(); });
#endif
  }

  // Never destroyed: tensors may be freed while the process exits.
  static BlockCache& instance() {
    static BlockCache* c = new BlockCache();
    return *c;
  }

  c10::DataPtr allocate(size_t n) override {
    const size_t bytes = (n + kHuge - 1) & ~(kHuge - 1);
    void* p = take(bytes);
    if (p != nullptr) report(p, static_cast<int64_t>(bytes));
    if (p == nullptr) {
      p = fresh_block(bytes);
      if (p == nullptr) {  // give the idle blocks back and try once more
        empty();
        p = fresh_block(bytes);
      }
      TORCH_CHECK_WITH(OutOfMemoryError, p != nullptr, "poolext: cannot allocate ", n,
                       " bytes of CPU memory");
      std::lock_guard<std::mutex> g(mu_);
      live_.emplace(p, bytes);
      live_bytes_ += bytes;
    }
    report(p, static_cast<int64_t>(bytes));
    return {p, p, &cached_delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &cached_delete; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void give_back(void* p) {
    std::vector<void*> drop;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = live_.find(p);
      TORCH_INTERNAL_ASSERT(it != live_.end(), "poolext: freeing a block the cache did not give");
      bytes = it->second;
      live_.erase(it);
      live_bytes_ -= bytes;
      if (bytes > limit_) {
        drop.push_back(p);
      } else {
        idle_.push_back({p, bytes});
        idle_bytes_ += bytes;
        while (idle_bytes_ > limit_) {  // oldest first
          drop.push_back(idle_.front().p);
          idle_bytes_ -= idle_.front().bytes;
          idle_.pop_front();
        }
      }
    }
    report(p, -static_cast<int64_t>(bytes));
    for (void* q : drop) release(q);
  }

  void empty() {
    std::deque<Idle> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      drop.swap(idle_);
      idle_bytes_ = 0;
    }
    for (const Idle& b : drop) release(b.p);
  }

  std::vector<int64_t> stats() {
    std::lock_guard<std::mutex> g(mu_);
    return {static_cast<int64_t>(idle_bytes_), static_cast<int64_t>(idle_.size()),
            static_cast<int64_t>(live_bytes_), hits_,
            misses_, static_cast<int64_t>(limit_)};
  }

 private:
  struct Idle {
    void* p;
    size_t bytes;
  };

  // Tells torch's memory profiler (profile_memory=True), as its own CPU
  // allocator does.
  void report(void* p, int64_t delta) {
    if (!c10::memoryProfilingEnabled()) return;
    size_t live = 0, idle = 0;
    {
      std::lock_guard<std::mutex> g(mu_);
      live = live_bytes_;
      idle = idle_bytes_;
    }
    c10::reportMemoryUsageToProfiler(p, delta, live, live + idle,
                                     c10::Device(c10::DeviceType::CPU));
  }

  // The smallest idle block of bytes to bytes * 5/4, moved to the live set;
  // nullptr if there is none.
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> g(mu_);
    auto best = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->bytes >= bytes && it->bytes <= bytes + bytes / 4 &&
          (best == idle_.end() || it->bytes < best->bytes)) {
        best = it;
      }
    }
    if (best == idle_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    void* p = best->p;
    live_.emplace(p, best->bytes);
    live_bytes_ += best->bytes;
    idle_bytes_ -= best->bytes;
    idle_.erase(best);
    return p;
  }

  std::mutex mu_;
  const size_t limit_;
  std::deque<Idle> idle_;  // oldest first
  size_t idle_bytes_ = 0;
  std::unordered_map<void*, size_t> live_;
  size_t live_bytes_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

void cached_delete(void* p) {
  if (p != nullptr) BlockCache::instance().give_back(p);
}

}  // namespace

at::Tensor empty_output(c10::IntArrayRef sizes, const at::TensorOptions& options) {
  TORCH_INTERNAL_ASSERT(options.device().is_cpu());
  size_t bytes = options.dtype().itemsize();
  for (const int64_t s : sizes) bytes *= static_cast<size_t>(s);
  BlockCache& cache = BlockCache::instance();
  if (bytes < kMinCached) return at::empty(sizes, options);
  return at::detail::empty_generic(sizes, &cache, c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   options.dtype().toScalarType(), options.memory_format_opt());
}

std::vector<int64_t> cache_stats() { return BlockCache::instance().stats(); }

void empty_cache() { BlockCache::instance().empty(); }

}  // namespace cpu
}  // namespace poolext
