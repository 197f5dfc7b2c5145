// Argument checks and problem set-up shared by every op on every device.
//
// The Python layer normalises arguments and raises torch's errors first; these
// checks repeat what memory safety depends on, so that a direct call of
// torch.ops.poolext.* with bad arguments raises instead of crashing.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>
#include <c10/util/irange.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "geometry.h"

namespace poolext {

// Numbers in error messages go through std::to_string, never through a
// std::ostream: an extension linked with its own static copy of libstdc++
// (as one toolchain seen here does behind g++) crashes when it formats an
// integer through an ostream whose locale the other copy set up.  TORCH_CHECK
// streams its arguments, so every number reaches it as a string.
inline std::string num(int64_t v) { return std::to_string(v); }

inline std::string list_str(c10::IntArrayRef v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  s += v.size() == 1 ? ",)" : ")";
  return s;
}

struct Problem {
  Geometry g;
  int rank = 0;          // spatial rank, 1..3
  bool batched = true;   // input has an N dim
  bool channels_last = false;
  std::vector<int64_t> out_shape;

  at::MemoryFormat memory_format() const {
    if (!channels_last) return at::MemoryFormat::Contiguous;
    return rank == 2 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
  }
  int64_t in_numel() const { return g.N * g.C * g.in_plane(); }
  int64_t out_numel() const { return g.N * g.C * g.out_plane(); }
};

// A shape as torch prints it in its checks: [1, 0, 5, 5].
inline std::string bracket_str(c10::IntArrayRef v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

// torch checks 1d pooling as 2d: per-dim values with a leading dim holding `fill`.
inline std::vector<int64_t> lift(c10::IntArrayRef v, int64_t fill) {
  std::vector<int64_t> out(v.begin(), v.end());
  if (out.size() == 1) out.insert(out.begin(), fill);
  return out;
}

// How torch's shape checks name per-dim values: "kH: 2 kW: 3", "dT: 1 dH: 2 dW: 2", ...
inline std::string per_dim(const char* prefix, c10::IntArrayRef v, int64_t fill) {
  const auto l = lift(v, fill);
  const char* names = l.size() == 3 ? "THW" : "HW";
  std::string s;
  for (size_t i = 0; i < l.size(); ++i) {
    if (i) s += " ";
    s += std::string(prefix) + names[i] + ": " + num(l[i]);
  }
  return s;
}

// `sizes`: the input's sizes.  `dilation` empty means all ones (avg pooling).
inline Problem make_problem(const char* op, c10::IntArrayRef sizes, c10::IntArrayRef kernel_size,
                            c10::IntArrayRef stride, c10::IntArrayRef padding,
                            c10::IntArrayRef dilation, bool ceil_mode, bool channels_last) {
  const int64_t r = static_cast<int64_t>(kernel_size.size());
  TORCH_CHECK(r >= 1 && r <= 3, op, ": kernel_size must have 1, 2 or 3 entries, got kernel_size=",
              list_str(kernel_size));
  TORCH_CHECK(static_cast<int64_t>(stride.size()) == r, op, ": stride must have ", num(r),
              " entries, got stride=", list_str(stride));
  TORCH_CHECK(static_cast<int64_t>(padding.size()) == r, op, ": padding must have ", num(r),
              " entries, got padding=", list_str(padding));
  TORCH_CHECK(dilation.empty() || static_cast<int64_t>(dilation.size()) == r, op,
              ": dilation must have ", num(r), " entries, got dilation=", list_str(dilation));
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  // Value checks in torch's order and words (poolext's detail after them): every
  // kernel entry, then stride, dilation, padding; torch checks 1d as 2d.
  const std::vector<int64_t> ones(r, 1);
  const c10::IntArrayRef dil = dilation.empty() ? c10::IntArrayRef(ones) : dilation;
  const auto refuse = [&](const std::string& sentence, const std::string& detail) {
    TORCH_CHECK(false, sentence, " (", op, ": ", detail, ")");
  };
  const auto check_positive = [&](const char* name, c10::IntArrayRef v, const char* word,
                                  const char* prefix) {
    for (int64_t i = 0; i < r; ++i) {
      if (v[i] > 0) continue;
      const bool zero_stride = std::string(name) == "stride" ? std::count(v.begin(), v.end(), 0) > 0
                               : std::string(name) == "kernel_size" &&
                                     std::count(v.begin(), v.end(), 0) > 0 &&
                                     kernel_size == stride;
      refuse(zero_stride ? std::string("stride should not be zero")
                         : std::string(word) + " should be greater than zero, but got " +
                               per_dim(prefix, v, 1),
             std::string(name) + " must be positive, got " + name + "=" + list_str(v));
    }
  };
  check_positive("kernel_size", kernel_size, "kernel size", "k");
  check_positive("stride", stride, "stride", "d");
  check_positive("dilation", dil, "dilation", "dilation");
  for (int64_t i = 0; i < r; ++i) {
    if (padding[i] < 0) {
      refuse("pad must be non-negative, but got pad: " + num(padding[i]),
             "padding must be non-negative, got padding=" + list_str(padding));
    }
  }
  for (int64_t i = 0; i < r; ++i) {
    TORCH_CHECK(kernel_size[i] <= kMax && dil[i] <= kMax, op,
                ": kernel_size and dilation must fit in int32, got kernel_size=",
                list_str(kernel_size), ", dilation=", list_str(dil));
  }
  const std::string pad_detail = "padding must be at most half the kernel size, got padding=" +
                                 list_str(padding) + " with kernel_size=" + list_str(kernel_size);
  for (int64_t i = 0; i < r; ++i) {
    if (padding[i] > ((kernel_size[i] - 1) * dil[i] + 1) / 2) {
      refuse("pad should be at most half of effective kernel size, but got pad=" +
                 num(padding[i]) + ", kernel_size=" + num(kernel_size[i]) + " and dilation=" +
                 num(dil[i]),
             pad_detail);
    }
  }
  for (int64_t i = 0; i < r; ++i) {
    if (padding[i] > kernel_size[i] / 2) {
      const auto k = lift(kernel_size, 1), p = lift(padding, 0);
      refuse(r == 3 ? "pad should be smaller than or equal to half of kernel size, but got kT: " +
                          num(k[0]) + " kW: " + num(k[2]) + " kH: " + num(k[1]) + " padT: " +
                          num(p[0]) + " padW: " + num(p[2]) + " padH: " + num(p[1])
                    : "pad should be smaller than or equal to half of kernel size, but got "
                      "padW = " + num(p[1]) + ", padH = " + num(p[0]) + ", kW = " + num(k[1]) +
                          ", kH = " + num(k[0]),
             pad_detail);
    }
  }
  int64_t volume = 1;
  for (int64_t i = 0; i < r; ++i) {
    TORCH_CHECK(kernel_size[i] <= kMax / volume, op, ": a window of kernel_size=",
                list_str(kernel_size), " has more than 2^31-1 elements");
    volume *= kernel_size[i];
  }
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(ndim == r + 1 || ndim == r + 2, op, ": expected a ", num(r + 1), "D (unbatched) or ",
              num(r + 2), "D (batched) input, got input of shape ", list_str(sizes));
  // Only a batch dim may be zero (torch's words: 3d by op, 1d checked as 2d).
  for (int64_t i = ndim == r + 2 ? 1 : 0; i < ndim; ++i) {
    if (sizes[i] > 0) continue;
    std::vector<int64_t> shape(sizes.begin(), sizes.end());
    if (r == 1) shape.insert(shape.end() - 1, 1);
    const bool is_max = std::string(op).find("max") != std::string::npos;
    const std::string sentence =
        r == 3 ? std::string(is_max ? "max_pool3d_with_indices_out_cpu_template()" : "avg_pool3d()") +
                     ": Expected input's non-batch dimensions to have positive length, but input "
                     "has a shape of " + bracket_str(sizes) +
                     " and non-batch dimension 0 has length zero!"
               : "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for "
                 "input, but got:" + bracket_str(shape);
    refuse(sentence, "input dims other than the batch dim must be non-zero, got input of shape " +
                         list_str(sizes));
  }
  TORCH_CHECK(!channels_last || (r >= 2 && ndim == r + 2), op,
              ": channels_last needs a batched 2d or 3d input");
  if (dilation.empty() && r == 3) {  // torch's avg_pool3d: no input smaller than the kernel
    const int64_t T = sizes[ndim - 3], H = sizes[ndim - 2], W = sizes[ndim - 1];
    if (T < kernel_size[0] || H < kernel_size[1] || W < kernel_size[2]) {
      refuse("input image (T: " + num(T) + " H: " + num(H) + " W: " + num(W) +
                 ") smaller than kernel size (kT: " + num(kernel_size[0]) + " kH: " +
                 num(kernel_size[1]) + " kW: " + num(kernel_size[2]) + ")",
             "input of shape " + list_str(sizes) + " is smaller than kernel_size=" +
                 list_str(kernel_size));
    }
  }

  Problem pb;
  pb.rank = static_cast<int>(r);
  pb.batched = ndim == r + 2;
  pb.channels_last = channels_last;
  pb.g.N = pb.batched ? sizes[0] : 1;
  pb.g.C = sizes[ndim - r - 1];
  for (int64_t i = 0; i < 3; ++i) {
    Dim& dm = pb.g.dim[i];
    const int64_t a = i - (3 - r);  // index into the argument lists
    if (a < 0) {
      dm = Dim{{}, 1, 1, 1, 1, 0, 1};
      continue;
    }
    dm.in = sizes[ndim - r + a];
    dm.k = kernel_size[a];
    dm.s = stride[a];
    dm.p = padding[a];
    dm.d = dilation.empty() ? 1 : dilation[a];
    // Any stride from L + 2p + d(k-1) + 2 on gives the same single window (in
    // either rounding mode); clamping keeps the arithmetic in range for any stride.
    dm.s = std::min(dm.s, dm.in + 2 * dm.p + dm.d * (dm.k - 1) + 2);
    dm.out = pooled_size(dm.in, dm.k, dm.s, dm.p, dm.d, ceil_mode);
  }
  for (int64_t a = 0; a < r; ++a) {
    if (pb.g.dim[3 - r + a].out >= 1) continue;
    // torch: "Given input size: (CxHxW). Calculated output size: (Cxh'xw')...", 1d as 2d
    std::string ins = num(pb.g.C), outs = num(pb.g.C);
    for (int64_t i = (r == 1 ? 1 : 3 - r); i < 3; ++i) {
      ins += "x" + num(pb.g.dim[i].in);
      outs += "x" + num(pb.g.dim[i].out);
    }
    refuse("Given input size: (" + ins + "). Calculated output size: (" + outs +
               "). Output size is too small",
           "output size is too small: input of shape " + list_str(sizes) + " with kernel_size=" +
               list_str(kernel_size) + ", stride=" + list_str(stride) + ", padding=" +
               list_str(padding) +
               (dilation.empty() ? std::string() : ", dilation=" + list_str(dilation)) +
               " gives a spatial output dim of " + num(pb.g.dim[3 - r + a].out));
  }
  pb.out_shape.assign(sizes.begin(), sizes.end());
  for (int64_t a = 0; a < r; ++a) {
    pb.out_shape[ndim - r + a] = pb.g.dim[3 - r + a].out;
  }
  return pb;
}

// Byte width of the compact argmax: the winner's tap index inside its window.
inline at::ScalarType argmax_dtype(int64_t kernel_volume) {
  if (kernel_volume <= 256) return at::kByte;
  if (kernel_volume <= 65536) return at::kShort;  // read back as uint16
  return at::kInt;
}

// Calls f(arg_t{}) with the C++ type that argmax entries of dtype `t` are read
// as: uint8, uint16 (stored as int16) or int32.
template <typename F>
void dispatch_argmax(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kByte: f(uint8_t{}); break;
    case at::kShort: f(uint16_t{}); break;
    default: f(int32_t{}); break;
  }
}

inline void check_argmax(const char* op, const Problem& pb, const at::Tensor& argmax) {
  TORCH_CHECK(argmax.scalar_type() == argmax_dtype(pb.g.kernel_volume()), op,
              ": argmax has dtype ", argmax.scalar_type(), ", expected ",
              argmax_dtype(pb.g.kernel_volume()), " for a window of ", num(pb.g.kernel_volume()),
              " elements");
  TORCH_CHECK(argmax.sizes() == c10::IntArrayRef(pb.out_shape), op, ": argmax has shape ",
              list_str(argmax.sizes()), ", expected ", list_str(pb.out_shape));
}

inline void check_grad_output(const char* op, const Problem& pb, const at::Tensor& grad_output) {
  TORCH_CHECK(grad_output.sizes() == c10::IntArrayRef(pb.out_shape), op,
              ": grad_output has shape ", list_str(grad_output.sizes()), ", expected ",
              list_str(pb.out_shape));
  TORCH_CHECK(at::isFloatingType(grad_output.scalar_type()), op,
              ": grad_output must be a floating point tensor, got ", grad_output.scalar_type());
}

inline void check_divisor(const char* op, std::optional<int64_t> divisor_override) {
  TORCH_CHECK(!divisor_override.has_value() || divisor_override.value() != 0, op,
              ": divisor_override must be non-zero, got divisor_override=0");
}

namespace cpu {
at::Tensor empty_output(c10::IntArrayRef sizes, const at::TensorOptions& options);  // cpu/memory.cpp
}

// An uninitialised output tensor: on CPU from poolext's block cache
// (cpu/memory.h), elsewhere from at::empty.
inline at::Tensor new_output(c10::IntArrayRef sizes, const at::TensorOptions& options) {
  return options.device().is_cpu() ? cpu::empty_output(sizes, options) : at::empty(sizes, options);
}

// Empty tensor for outputs the caller did not ask for.
inline at::Tensor none_like(const at::Tensor& t, at::ScalarType dt) {
  return at::empty({0}, t.options().dtype(dt));
}

}  // namespace poolext
