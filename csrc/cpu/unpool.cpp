// Max unpooling on CPU: forward (zero each output plane, then scatter the
// input into it at the indices) and backward (gather at the indices).
//
// Values are only moved, never computed, so the kernels copy bits: one
// instance per element width serves every dtype of that width.  Parallel over
// independent (n, c) planes (contiguous) or (n, channel block) tiles
// (channels_last); inside a plane the scatter runs in input order, so with
// duplicated indices the last input element wins, in every run and at any
// thread count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>

#include "../core/unpool.h"

namespace poolext {
namespace cpu {
namespace {

constexpr int64_t kGrain = 32768;        // elements per task, at least
constexpr int64_t kChannelBlock = 64;     // channels_last: channels per task

// Lowest logical input position holding a bad index, across tasks.
class FirstBad {
 public:
  void record(int64_t pos) {
    int64_t cur = pos_.load(std::memory_order_relaxed);
    while (pos < cur && !pos_.compare_exchange_weak(cur, pos, std::memory_order_relaxed)) {
    }
  }
  bool any() const { return pos_.load() != kNone; }
  int64_t pos() const { return pos_.load(); }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> pos_{kNone};
};

inline bool in_range(int64_t j, int64_t size) {
  return static_cast<uint64_t>(j) < static_cast<uint64_t>(size);
}

// Calls f(T{}) with the unsigned integer type of `bytes` bytes.
template <typename F>
void dispatch_width(size_t bytes, F&& f) {
  switch (bytes) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: TORCH_CHECK(false, "poolext: unexpected element size ", std::to_string(bytes));
  }
}

int64_t grain_for(int64_t per_item) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, per_item));
}

template <typename T>
void scatter(const T* in, const int64_t* idx, T* out, const Unpool& u, FirstBad& bad) {
  const int64_t S = u.in_plane, P = u.out_plane;
  if (!u.channels_last) {
    at::parallel_for(0, u.planes(), grain_for(S + P), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        T* o = out + p * P;
        std::fill(o, o + P, T(0));
        const T* x = in + p * S;
        const int64_t* ix = idx + p * S;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t j = ix[s];
          if (!in_range(j, P)) {
            bad.record(p * S + s);  // later elements of this task come later in logical order
            return;
          }
          o[j] = x[s];
        }
      }
    });
    return;
  }
  // channels_last: element (n, s, c) at (n * S + s) * C + c.  A task owns
  // channels [c0, c1) of one n and walks s in order, so each plane sees its
  // elements in input order.
  const int64_t C = u.C;
  const int64_t blocks = (C + kChannelBlock - 1) / kChannelBlock;
  const int64_t width = std::min(C, kChannelBlock);
  at::parallel_for(0, u.N * blocks, grain_for(width * (S + P)), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / blocks;
      const int64_t c0 = (t % blocks) * kChannelBlock;
      const int64_t c1 = std::min(C, c0 + kChannelBlock);
      T* o = out + n * P * C;
      for (int64_t q = 0; q < P; ++q) std::fill(o + q * C + c0, o + q * C + c1, T(0));
      const T* x = in + n * S * C;
      const int64_t* ix = idx + n * S * C;
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t j = ix[s * C + c];
          if (in_range(j, P)) {
            o[j * C + c] = x[s * C + c];
          } else {
            bad.record((n * C + c) * S + s);
          }
        }
      }
    }
  });
}

template <typename T>
void gather(const T* go, const int64_t* idx, T* gi, const Unpool& u, FirstBad& bad) {
  const int64_t S = u.in_plane, P = u.out_plane;
  if (!u.channels_last) {
    at::parallel_for(0, u.planes(), grain_for(S), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const T* g = go + p * P;
        const int64_t* ix = idx + p * S;
        T* o = gi + p * S;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t j = ix[s];
          if (!in_range(j, P)) {
            bad.record(p * S + s);
            return;
          }
          o[s] = g[j];
        }
      }
    });
    return;
  }
  const int64_t C = u.C;
  at::parallel_for(0, u.N * S, grain_for(C), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / S, s = row % S;
      const T* g = go + n * P * C;
      const int64_t* ix = idx + row * C;
      T* o = gi + row * C;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t j = ix[c];
        if (in_range(j, P)) {
          o[c] = g[j * C + c];
        } else {
          o[c] = T(0);
          bad.record((n * C + c) * S + s);
        }
      }
    }
  });
}

void raise_bad(const char* op, const Unpool& u, const FirstBad& bad, const at::Tensor& ix) {
  const int64_t pos = bad.pos();
  bad_index(op, u, pos, ix.const_data_ptr<int64_t>()[u.in_offset(pos)]);
}

at::Tensor max_unpool_cpu(const at::Tensor& self, const at::Tensor& indices,
                          c10::SymIntArrayRef output_size_sym, bool channels_last) {
  const char* op = "poolext.max_unpool";
  const auto output_size = C10_AS_INTARRAYREF_SLOW(output_size_sym);
  const Unpool u = unpool_prologue(op, self, indices, output_size, channels_last);
  const auto mf = u.memory_format();
  // As torch: an empty output needs no kernel, so neither the dtype nor the
  // indices are looked at.
  if (u.out_numel() == 0) return new_output(u.out_shape, self.options().memory_format(mf));
  TORCH_CHECK_NOT_IMPLEMENTED(unpool_float_type(self.scalar_type()), op, ": input dtype ",
                              self.scalar_type(), " is not supported on cpu (float32, float64, "
                              "float16 and bfloat16 are)");
  at::Tensor out = new_output(u.out_shape, self.options().memory_format(mf));
  if (u.in_numel() == 0) return out.zero_();
  const at::Tensor x = self.contiguous(mf);
  const at::Tensor ix = indices.contiguous(mf);
  FirstBad bad;
  dispatch_width(self.element_size(), [&](auto tag) {
    using T = decltype(tag);
    scatter(static_cast<const T*>(x.const_data_ptr()), ix.const_data_ptr<int64_t>(),
            static_cast<T*>(out.mutable_data_ptr()), u, bad);
  });
  if (bad.any()) raise_bad(op, u, bad, ix);
  return out;
}

at::Tensor max_unpool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& indices,
                                   c10::SymIntArrayRef output_size_sym, bool channels_last) {
  const char* op = "poolext.max_unpool_backward";
  const auto output_size = C10_AS_INTARRAYREF_SLOW(output_size_sym);
  UnpoolBackward b = unpool_backward_setup(op, grad_output, indices, output_size, channels_last);
  if (b.done) return b.grad_input;
  const Unpool& u = b.u;
  const at::Tensor &go = b.go, &ix = b.ix;
  at::Tensor& grad_input = b.grad_input;
  FirstBad bad;
  dispatch_width(go.element_size(), [&](auto tag) {
    using T = decltype(tag);
    gather(static_cast<const T*>(go.const_data_ptr()), ix.const_data_ptr<int64_t>(),
           static_cast<T*>(grad_input.mutable_data_ptr()), u, bad);
  });
  if (bad.any()) raise_bad(op, u, bad, ix);
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("max_unpool", &max_unpool_cpu);
  m.impl("max_unpool_backward", &max_unpool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
