// Max pooling on CPU: forward (values, compact argmax, optional int64
// indices), backward (gather from the compact argmax) and the gather at the
// argmax that double backward needs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/SymIntArrayRef.h>
#include <torch/library.h>

#include "../problem.h"
#include "engine.h"

namespace poolext {
namespace cpu {
namespace {

template <typename F>
void dispatch_argmax(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kByte: f(uint8_t{}); break;
    case at::kShort: f(uint16_t{}); break;
    default: f(int32_t{}); break;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> max_pool_cpu(
    const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool channels_last,
    bool with_argmax, bool with_indices) {
  const char* op = "poolext.max_pool";
  Problem pb = make_problem(op, self.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  TORCH_CHECK_NOT_IMPLEMENTED(
      self.scalar_type() != at::kBool && !self.is_complex(), op,
      ": input dtype ", self.scalar_type(), " is not supported");
  const auto mf = pb.memory_format();
  const at::Tensor x = self.contiguous(mf);
  at::Tensor out = at::empty(pb.out_shape, self.options().memory_format(mf));
  const auto am_type = argmax_dtype(pb.g.kernel_volume());
  at::Tensor argmax = with_argmax
                          ? at::empty(pb.out_shape, self.options().dtype(am_type).memory_format(mf))
                          : none_like(self, am_type);
  at::Tensor indices = with_indices
                           ? at::empty(pb.out_shape, self.options().dtype(at::kLong).memory_format(mf))
                           : none_like(self, at::kLong);
  if (pb.out_numel() == 0) return {out, argmax, indices};
  const Geometry g = pb.g;
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.max_pool", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_argmax(am_type, [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* in = x.const_data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      arg_t* am = with_argmax ? reinterpret_cast<arg_t*>(argmax.data_ptr()) : nullptr;
      int64_t* idx = with_indices ? indices.data_ptr<int64_t>() : nullptr;
      auto finish = [&](int64_t e, int64_t n, const acc_t* v, const int32_t* t, int64_t od,
                        int64_t oh, int64_t ow, int64_t ow_step) {
        for (int64_t i = 0; i < n; ++i) o[e + i] = static_cast<scalar_t>(v[i]);
        if (am) {
          for (int64_t i = 0; i < n; ++i) am[e + i] = static_cast<arg_t>(t[i]);
        }
        if (idx) {
          for (int64_t i = 0; i < n; ++i) idx[e + i] = g.plane_index(od, oh, ow + i * ow_step, t[i]);
        }
      };
      if (channels_last) {
        fold_cl<MaxReduce<acc_t>>(in, g, finish);
      } else {
        fold_contig<MaxReduce<acc_t>>(in, g, finish);
      }
    });
  });
  return {out, argmax, indices};
}

at::Tensor max_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& argmax,
                                 c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                 at::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  const char* op = "poolext.max_pool_backward";
  const auto sizes = C10_AS_INTARRAYREF_SLOW(input_size);
  Problem pb = make_problem(op, sizes, kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  check_grad_output(op, pb, grad_output);
  check_argmax(op, pb, argmax);
  const auto mf = pb.memory_format();
  at::Tensor grad_input = at::empty(sizes, grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  const at::Tensor amc = argmax.contiguous(mf);
  const Geometry g = pb.g;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, go.scalar_type(), "poolext.max_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_argmax(amc.scalar_type(), [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* gop = go.const_data_ptr<scalar_t>();
      const arg_t* am = reinterpret_cast<const arg_t*>(amc.const_data_ptr());
      scalar_t* gi = grad_input.data_ptr<scalar_t>();
      if (!channels_last) {
        // Output ow sends its gradient to tap t only if t won its window.
        struct Policy {
          const arg_t* am;
          const scalar_t* go;
          int64_t OW;
          const arg_t* a = nullptr;
          const scalar_t* gr = nullptr;
          void set_row(int64_t orow, int64_t, int64_t) {
            a = am + orow * OW;
            gr = go + orow * OW;
          }
          acc_t val(int64_t ow, int32_t t) const {
            return a[ow] == static_cast<arg_t>(t) ? static_cast<acc_t>(gr[ow]) : acc_t(0);
          }
        };
        gather_contig(gi, g, Policy{am, gop, g.dim[2].out});
      } else {
        const int64_t C = g.C;
        gather_cl(gi, g, [&](acc_t* acc, int64_t opos, int64_t tap, int64_t c0, int64_t n,
                             int64_t, int64_t, int64_t) {
          const arg_t* a = am + opos * C + c0;
          const scalar_t* s = gop + opos * C + c0;
          const arg_t t = static_cast<arg_t>(tap);
          for (int64_t i = 0; i < n; ++i) acc[i] += a[i] == t ? static_cast<acc_t>(s[i]) : acc_t(0);
        });
      }
    });
  });
  return grad_input;
}

// out[o] = source[the input element that won window o] (0 for an empty
// window); source has the input's shape, out the output's.  The adjoint of
// max_pool_backward.
at::Tensor max_pool_gather_cpu(const at::Tensor& source, const at::Tensor& argmax,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                               bool channels_last) {
  const char* op = "poolext.max_pool_gather";
  Problem pb = make_problem(op, source.sizes(), kernel_size, stride, padding, dilation, ceil_mode,
                            channels_last);
  check_argmax(op, pb, argmax);
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(source.scalar_type()), op,
                              ": source must be a floating point tensor, got ", source.scalar_type());
  const auto mf = pb.memory_format();
  at::Tensor out = at::empty(pb.out_shape, source.options().memory_format(mf));
  if (pb.out_numel() == 0) return out;
  const at::Tensor src = source.contiguous(mf);
  const at::Tensor amc = argmax.contiguous(mf);
  const Geometry g = pb.g;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "poolext.max_pool_gather", [&] {
    dispatch_argmax(amc.scalar_type(), [&](auto am_tag) {
      using arg_t = decltype(am_tag);
      const scalar_t* s = src.const_data_ptr<scalar_t>();
      const arg_t* am = reinterpret_cast<const arg_t*>(amc.const_data_ptr());
      scalar_t* o = out.data_ptr<scalar_t>();
      const int64_t OD = g.dim[0].out, OH = g.dim[1].out, OW = g.dim[2].out;
      const int64_t OP = g.out_plane(), IP = g.in_plane(), C = g.C;
      at::parallel_for(0, g.N * g.C * OP, grain_for(4), [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; ++e) {
          int64_t sp, plane_or_n, c = 0;
          if (!channels_last) {
            sp = e % OP;
            plane_or_n = e / OP;
          } else {
            c = e % C;
            sp = (e / C) % OP;
            plane_or_n = e / (C * OP);
          }
          const int64_t ow = sp % OW, oh = (sp / OW) % OH, od = sp / (OW * OH);
          (void)OD;
          const int64_t t = static_cast<int64_t>(am[e]);
          // An empty window (or a foreign argmax) names no input element: nothing flows.
          if (!g.tap_in_bounds(od, oh, ow, t)) {
            o[e] = scalar_t(0);
            continue;
          }
          const int64_t ip = g.plane_index(od, oh, ow, t);
          o[e] = channels_last ? s[(plane_or_n * IP + ip) * C + c] : s[plane_or_n * IP + ip];
        }
      });
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poolext, CPU, m) {
  m.impl("max_pool", &max_pool_cpu);
  m.impl("max_pool_backward", &max_pool_backward_cpu);
  m.impl("max_pool_gather", &max_pool_gather_cpu);
}

}  // namespace cpu
}  // namespace poolext
