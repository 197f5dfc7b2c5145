// Element helpers shared by the per-element functors of both devices (the
// adaptive functors of adaptive.h, which the CPU and CUDA ops both run, and
// the CUDA fixed-window functors of cuda/elements.h): the coordinates of a
// flat element in either layout, the offset of its plane, and the compact
// argmax stored and loaded at a run-time width.  Host and device code.
//
// Layouts: contiguous data is N*C planes of D*H*W; channels_last data is
// N x D x H x W x C, so consecutive elements (threads, on CUDA) take
// consecutive channels.  index_t (int32 or int64) is only used for the flat
// index and its decomposition; offsets are computed in int64.
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>

namespace poolext {

// Coordinates of flat element e of a tensor with spatial sizes (D, H, W).
// Contiguous: base = plane (n*C + c), c = 0.  channels_last: base = n.
template <bool CL, typename index_t>
struct Pos {
  index_t base, c, d, h, w;
  C10_HOST_DEVICE Pos(index_t e, int64_t C, int64_t D, int64_t H, int64_t W) {
    if (CL) {
      c = e % static_cast<index_t>(C);
      e /= static_cast<index_t>(C);
    } else {
      c = 0;
    }
    w = e % static_cast<index_t>(W);
    e /= static_cast<index_t>(W);
    h = e % static_cast<index_t>(H);
    e /= static_cast<index_t>(H);
    d = e % static_cast<index_t>(D);
    base = e / static_cast<index_t>(D);
  }
};

// Offset of element (base, c) at flat spatial position 0 of a tensor whose
// planes hold `plane` positions; position sp is then at + sp * step<CL>(C).
template <bool CL>
C10_HOST_DEVICE inline int64_t origin(int64_t base, int64_t c, int64_t plane, int64_t C) {
  return CL ? base * plane * C + c : base * plane;
}
template <bool CL>
C10_HOST_DEVICE inline int64_t step(int64_t C) {
  return CL ? C : 1;
}

// Stores tap t at argmax[e] in the argmax dtype's width (argmax_dtype():
// 1 = uint8, 2 = int16 read as uint16, 4 = int32); width 0 stores nothing.
// A run-time width (uniform across the grid) keeps the number of kernels
// down where the argmax is not on the hot path.
C10_HOST_DEVICE inline void store_tap(void* argmax, int width, int64_t e, int64_t t) {
  switch (width) {
    case 1: static_cast<uint8_t*>(argmax)[e] = static_cast<uint8_t>(t); break;
    case 2: static_cast<uint16_t*>(argmax)[e] = static_cast<uint16_t>(t); break;
    case 4: static_cast<int32_t*>(argmax)[e] = static_cast<int32_t>(t); break;
    default: break;
  }
}
C10_HOST_DEVICE inline int64_t load_tap(const void* argmax, int width, int64_t e) {
  switch (width) {
    case 1: return static_cast<const uint8_t*>(argmax)[e];
    case 2: return static_cast<const uint16_t*>(argmax)[e];
    default: return static_cast<const int32_t*>(argmax)[e];
  }
}

}  // namespace poolext
