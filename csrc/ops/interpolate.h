// Bicubic resize of NCHW planes to a given size: the entry point of the position-table
// interpolation ViT-family models apply to run on another image size (kernels/cpu/bicubic.h).
//
// interpolate_bicubic(x, out_h, out_w, antialias) gives the same F32 values as
//   torch.nn.functional.interpolate(x, size=(out_h, out_w), mode="bicubic",
//                                   align_corners=align_corners, antialias=antialias)
// on the CPU, bit for bit (tests/python/test_ops_vision.py checks it against torch): antialias
// off is what transformers' ViT and DINOv2 call, on is DINOv2 with registers. With a size (no scale
// factor) torch's scale along an axis is in / out, computed in F32, and so it is here.
//
// Layout: x [batch, channels, in_h, in_w], F32, any strides (a channels-last view of a position
// table works without a copy); the output is a contiguous F32 [batch, channels, out_h, out_w].
// Sizes >= 1. CPU only: tensors on a GPU raise DeviceError.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace hfport {

// align_corners: torch's align_corners=True (antialias off only; ArgumentError with it), what
// CLAP's reshape_mel2img resizes the spectrogram with.
Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool antialias,
                           const Tensor& out = Tensor(), bool align_corners = false);

// Float64 reference from the definitions (the source position and the cubic kernel in float64,
// the sums in float64): the kernel's index and weight arithmetic checked independently of its
// F32 rounding. Returns F64 [batch, channels, out_h, out_w].
Tensor interpolate_bicubic_reference(const Tensor& x, int64_t out_h, int64_t out_w,
                                     bool antialias, bool align_corners = false);

}  // namespace hfport
