// Average pooling on CPU: forward and backward (gather).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include "../problem.h"
#include "engine.h"

namespace poolext {
namespace cpu {
namespace {

void check_divisor(const char* op, std::optional<int64_t> divisor_override) {
  TORCH_CHECK(!divisor_override.has_value() || divisor_override.value() != 0, op,
              ": divisor_override must be non-zero, got divisor_override=0");
}

at::Tensor avg_pool_cpu(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                        at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                        std::optional<int64_t> divisor_override, bool channels_last) {
  const char* op = "poolext.avg_pool";
  check_divisor(op, divisor_override);
  Problem pb = make_problem(op, self.sizes(), kernel_size, stride, padding, {}, ceil_mode,
                            channels_last);
  const auto dt = self.scalar_type();
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(dt) || dt == at::kLong, op, ": input dtype ", dt,
                              " is not supported (floating point types and int64 are)");
  const auto mf = pb.memory_format();
  at::Tensor out = at::empty(pb.out_shape, self.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor x = self.contiguous(mf);
  const Geometry g = pb.g;
  const int64_t dov = divisor_override.value_or(0);
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kLong, at::kHalf, at::kBFloat16, dt, "poolext.avg_pool", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    // Every window of a run has the same divisor.
    auto finish = [&](int64_t e, int64_t n, const acc_t* v, const int32_t*, int64_t od, int64_t oh,
                      int64_t ow, int64_t) {
      const auto div = static_cast<acc_t>(g.avg_divisor(od, oh, ow, count_include_pad, dov));
      for (int64_t i = 0; i < n; ++i) o[e + i] = static_cast<scalar_t>(v[i] / div);
    };
    if (channels_last) {
      fold_cl<SumReduce<acc_t>>(in, g, finish);
    } else {
      fold_contig<SumReduce<acc_t>>(in, g, finish);
    }
  });
  return out;
}

at::Tensor avg_pool_backward_cpu(const at::Tensor& grad_output, c10::SymIntArrayRef input_size,
                                 at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                 at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                                 std::optional<int64_t> divisor_override, bool channels_last) {
  const char* op = "poolext.avg_pool_backward";
  check_divisor(op, divisor_override);
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  Problem pb = make_problem(op, sizes, kernel_size, stride, padding, {}, ceil_mode, channels_last);
  check_grad_output(op, pb, grad_output);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = at::empty(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  const Geometry g = pb.g;
  const int64_t dov = divisor_override.value_or(0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.avg_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    scalar_t* gi = grad_input.data_ptr<scalar_t>();
    if (!channels_last) {
      // Output ow sends grad / divisor to every tap of its window; the row of
      // quotients is formed once per covering output row.
      struct Policy {
        const scalar_t* go;
        const Geometry* g;
        bool count_include_pad;
        int64_t dov;
        std::vector<acc_t> q;
        void set_row(int64_t orow, int64_t od, int64_t oh) {
          const int64_t OW = g->dim[2].out;
          q.resize(OW);
          const scalar_t* gr = go + orow * OW;
          for (int64_t ow = 0; ow < OW; ++ow) {
            q[ow] = static_cast<acc_t>(gr[ow]) /
                    static_cast<acc_t>(g->avg_divisor(od, oh, ow, count_include_pad, dov));
          }
        }
        acc_t val(int64_t ow, int32_t) const { return q[ow]; }
      };
      gather_contig(gi, g, Policy{gop, &g, count_include_pad, dov, {}});
    } else {
      const int64_t C = g.C;
      gather_cl(gi, g, [&](acc_t* acc, int64_t opos, int64_t, int64_t c0, int64_t n, int64_t od,
                           int64_t oh, int64_t ow) {
        const acc_t div = static_cast<acc_t>(g.avg_divisor(od, oh, ow, count_include_pad, dov));
        const scalar_t* s = gop + opos * C + c0;
        for (int64_t i = 0; i < n; ++i) acc[i] += static_cast<acc_t>(s[i]) / div;
      });
    }
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("avg_pool", &avg_pool_cpu);
  m.impl("avg_pool_backward", &avg_pool_backward_cpu);
}

}  // namespace cpu
}  // namespace poolext
