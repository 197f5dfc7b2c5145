// Power-average (LP) pooling, both devices: the element functors and the
// host side of the ops (checks, allocation, dtype/layout dispatch through a
// Runner of run.h: cpu/lp_pool.cpp passes a parallel_for loop,
// cuda/lp_pool.cu a kernel launch).
//
// torch computes lp_pool as five passes over whole tensors,
//   u = avg_pool(x^p)  (padding 0, count_include_pad, so the divisor of a
//                       ceil-mode tail window is its clipped size)
//   y = (sign(u) * relu(|u|) * K)^(1/p)        K: the kernel's volume,
// and its gradient as as many again.  Here each direction is one pass:
//
//   forward, per output:  u = sum(x^p) / div, w = u * K, y = w^(1/p), and
//     (training) the window's coefficient c = (1/p) w^(1/p - 1) K / div,
//     the derivative of y with respect to each x^p of the window.  torch's
//     chain makes c exactly 0 where u == 0 (relu's gradient at 0) and
//     c * 0 where u is NaN (sign(NaN) is 0 in torch).
//   backward, per input:  g = sum over the windows covering x (increasing
//     output order) of grad_y * c, skipping windows whose c is 0 (torch's
//     relu mask there gives an exact 0 whatever grad_y holds), times
//     p x^(p - 1), as torch's pow backward.
//
// So training saves the input and one coefficient per output (in opmath
// type), where torch saves the input, x^p, u, its sign, |u| and w.  Powers
// take torch's special exponents (x*x for 2, sqrt for 1/2, ...), so values
// differ from torch's only by the roundings torch makes between its passes.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "elements.h"
#include "geometry.h"
#include "problem.h"
#include "run.h"

namespace poolext {

// x^e as torch's pow(Tensor, Scalar) computes it, its special exponents included.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t lp_power(acc_t x, acc_t e) {
  if (e == acc_t(0)) return acc_t(1);
  if (e == acc_t(1)) return x;
  if (e == acc_t(2)) return x * x;
  if (e == acc_t(3)) return x * x * x;
  if (e == acc_t(0.5)) return std::sqrt(x);
  if (e == acc_t(-0.5)) return acc_t(1) / std::sqrt(x);
  if (e == acc_t(-1)) return acc_t(1) / x;
  if (e == acc_t(-2)) return acc_t(1) / (x * x);
  return std::pow(x, e);
}

// The exponents of one problem in opmath type: p, p - 1, 1/p and 1/p - 1,
// each computed in double first (as torch's Scalar arithmetic does).
template <typename acc_t>
struct LpExponents {
  acc_t p, p_minus_1, inv, inv_minus_1;
  explicit LpExponents(double norm)
      : p(static_cast<acc_t>(norm)),
        p_minus_1(static_cast<acc_t>(norm - 1.0)),
        inv(static_cast<acc_t>(1.0 / norm)),
        inv_minus_1(static_cast<acc_t>(1.0 / norm - 1.0)) {}
};

namespace lp {

// One window's value from the sum of x^p over it, its divisor and the kernel
// volume K; stores its coefficient at *coef when coef is non-null.  The one
// place the forward's arithmetic is written, for every device and loop.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t finish(acc_t sum, acc_t div, acc_t K, const LpExponents<acc_t>& ex,
                                    acc_t* coef) {
  acc_t u = sum / div;
  if (u == acc_t(0)) u = acc_t(0);  // -0 as +0: torch's sign(u) * |u|
  const acc_t w = u * K;
  if (coef != nullptr) {
    acc_t c = 0;
    if (u != acc_t(0)) {
      c = ex.inv * lp_power(w, ex.inv_minus_1) * K / div;
      if (u != u) c = c * acc_t(0);
    }
    *coef = c;
  }
  return lp_power(w, ex.inv);
}

// One input's gradient contribution from one covering window: exactly 0
// where the window's coefficient is (torch's relu mask gives an exact 0 there,
// whatever grad_y holds).
template <typename acc_t>
C10_HOST_DEVICE inline acc_t term(acc_t grad_y, acc_t c) {
  return c != acc_t(0) ? grad_y * c : acc_t(0);
}

// One output element: its value and, with coef non-null, its coefficient.
template <bool CL, typename scalar_t, typename index_t>
struct Forward {
  using index_type = index_t;
  using acc_t = at::opmath_type<scalar_t>;
  Geometry g;
  LpExponents<acc_t> ex;
  const scalar_t* in;
  scalar_t* out;
  acc_t* coef;  // null unless training

  C10_HOST_DEVICE void operator()(index_t e) const {
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> o(e, g.C, D.out, H.out, W.out);
    const scalar_t* src = in + origin<CL>(o.base, o.c, g.in_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t sum = 0;
    for (int64_t d = D.avg_lo(o.d); d < D.avg_hi(o.d); ++d) {
      for (int64_t h = H.avg_lo(o.h); h < H.avg_hi(o.h); ++h) {
        const int64_t row = (d * H.in + h) * W.in;
        for (int64_t w = W.avg_lo(o.w); w < W.avg_hi(o.w); ++w) {
          sum += lp_power(static_cast<acc_t>(src[(row + w) * st]), ex.p);
        }
      }
    }
    const acc_t div = static_cast<acc_t>(g.avg_divisor(o.d, o.h, o.w, true, 0));
    const acc_t K = static_cast<acc_t>(g.kernel_volume());
    out[e] = static_cast<scalar_t>(finish(sum, div, K, ex, coef == nullptr ? nullptr : coef + e));
  }
};

// One input element: the gather over the windows that cover it.
template <bool CL, typename scalar_t, typename index_t>
struct Backward {
  using index_type = index_t;
  using acc_t = at::opmath_type<scalar_t>;
  Geometry g;
  LpExponents<acc_t> ex;
  const scalar_t* grad_out;
  const scalar_t* in;
  const acc_t* coef;
  scalar_t* grad_in;

  C10_HOST_DEVICE void operator()(index_t i) const {
    const Dim &D = g.dim[0], &H = g.dim[1], &W = g.dim[2];
    const Pos<CL, index_t> p(i, g.C, D.in, H.in, W.in);
    const int64_t o0 = origin<CL>(p.base, p.c, g.out_plane(), g.C);
    const int64_t st = step<CL>(g.C);
    acc_t acc = 0;
    D.for_each_cover(p.d, [&](int64_t od, int64_t) {
      H.for_each_cover(p.h, [&](int64_t oh, int64_t) {
        W.for_each_cover(p.w, [&](int64_t ow, int64_t) {
          const int64_t o = o0 + ((od * H.out + oh) * W.out + ow) * st;
          acc += term(static_cast<acc_t>(grad_out[o]), coef[o]);
        });
      });
    });
    const acc_t x = static_cast<acc_t>(in[i]);
    grad_in[i] = static_cast<scalar_t>(acc * (ex.p * lp_power(x, ex.p_minus_1)));
  }
};

}  // namespace lp

inline Problem make_lp_problem(const char* op, c10::IntArrayRef sizes, double norm_type,
                               c10::IntArrayRef kernel_size, c10::IntArrayRef stride,
                               bool ceil_mode, bool channels_last) {
  TORCH_CHECK(norm_type != 0 && std::isfinite(norm_type), op,
              ": norm_type must be finite and non-zero (infinite norms are max pooling)");
  const std::vector<int64_t> padding(kernel_size.size(), 0);
  return make_problem(op, sizes, kernel_size, stride, padding, {}, ceil_mode, channels_last);
}

inline at::ScalarType lp_coef_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// How the ops run their loops: a Launch provides
//   forward<scalar_t>(pb, ex, in, out, coef)        out (and coef) from in,
//   backward<scalar_t>(pb, ex, grad_out, in, coef, grad_in),
// all pointers dense in pb's layout.  ElementLaunch runs the functors above
// through a Runner (the CUDA ops); cpu/lp_pool.cpp has loops over rows that
// compute the same values in the same order.
template <typename Runner>
struct ElementLaunch {
  Runner run;

  template <typename scalar_t, typename acc_t>
  void forward(const Problem& pb, const LpExponents<acc_t>& ex, const scalar_t* in,
               scalar_t* out, acc_t* coef) const {
    const Geometry g = pb.g;
    run_elements(run, pb.channels_last, pb.out_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return lp::Forward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, ex, in, out, coef};
                 });
  }

  template <typename scalar_t, typename acc_t>
  void backward(const Problem& pb, const LpExponents<acc_t>& ex, const scalar_t* grad_out,
                const scalar_t* in, const acc_t* coef, scalar_t* grad_in) const {
    const Geometry g = pb.g;
    run_elements(run, pb.channels_last, pb.in_numel(), std::max(pb.in_numel(), pb.out_numel()),
                 [&](auto cl, auto index) {
                   return lp::Backward<decltype(cl)::value, scalar_t, decltype(index)>{
                       g, ex, grad_out, in, coef, grad_in};
                 });
  }
};

// (out, coef): coef is empty unless with_coef.
template <typename Launch>
std::tuple<at::Tensor, at::Tensor> lp_pool_impl(const Launch& launch, const at::Tensor& self,
                                                double norm_type, c10::IntArrayRef kernel_size,
                                                c10::IntArrayRef stride, bool ceil_mode,
                                                bool channels_last, bool with_coef) {
  const char* op = "poolext.lp_pool";
  const Problem pb =
      make_lp_problem(op, self.sizes(), norm_type, kernel_size, stride, ceil_mode, channels_last);
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(self.scalar_type()), op, ": input dtype ",
                              self.scalar_type(),
                              " is not supported (floating point types only)");
  const auto mf = pb.memory_format();
  at::Tensor out = new_output(pb.out_shape, self.options().memory_format(mf));
  const auto ct = lp_coef_dtype(self.scalar_type());
  at::Tensor coef = with_coef
                        ? new_output(pb.out_shape, self.options().dtype(ct).memory_format(mf))
                        : none_like(self, ct);
  if (pb.out_numel() == 0) return {out, coef};
  const at::Tensor x = self.contiguous(mf);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.lp_pool", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    launch.forward(pb, LpExponents<acc_t>(norm_type), x.const_data_ptr<scalar_t>(),
                   out.mutable_data_ptr<scalar_t>(),
                   with_coef ? coef.mutable_data_ptr<acc_t>() : nullptr);
  });
  return {out, coef};
}

template <typename Launch>
at::Tensor lp_pool_backward_impl(const Launch& launch, const at::Tensor& grad_output,
                                 const at::Tensor& self, const at::Tensor& coef,
                                 double norm_type, c10::IntArrayRef kernel_size,
                                 c10::IntArrayRef stride, bool ceil_mode, bool channels_last) {
  const char* op = "poolext.lp_pool_backward";
  const Problem pb =
      make_lp_problem(op, self.sizes(), norm_type, kernel_size, stride, ceil_mode, channels_last);
  check_grad_output(op, pb, grad_output);
  TORCH_CHECK(self.scalar_type() == grad_output.scalar_type(), op, ": self has dtype ",
              self.scalar_type(), ", grad_output ", grad_output.scalar_type());
  const auto ct = lp_coef_dtype(self.scalar_type());
  TORCH_CHECK(coef.scalar_type() == ct, op, ": coef has dtype ", coef.scalar_type(),
              ", expected ", ct);
  TORCH_CHECK(coef.sizes() == c10::IntArrayRef(pb.out_shape), op, ": coef has shape ",
              list_str(coef.sizes()), ", expected ", list_str(pb.out_shape));
  const auto mf = pb.memory_format();
  at::Tensor grad_input = new_output(self.sizes(), grad_output.options().memory_format(mf));
  if (pb.in_numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous(mf);
  const at::Tensor x = self.contiguous(mf);
  const at::Tensor cf = coef.contiguous(mf);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), "poolext.lp_pool", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    launch.backward(pb, LpExponents<acc_t>(norm_type), go.const_data_ptr<scalar_t>(),
                    x.const_data_ptr<scalar_t>(), cf.const_data_ptr<acc_t>(),
                    grad_input.mutable_data_ptr<scalar_t>());
  });
  return grad_input;
}

}  // namespace poolext
