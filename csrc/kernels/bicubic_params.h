// The kernels' view of one bicubic resize of NCHW planes, the position-table interpolation of the
// ViT family (transformers resizes the learned patch positions to another grid with
// torch.nn.functional.interpolate(mode="bicubic", align_corners=False), antialias off for ViT
// and DINOv2, on for DINOv2 with registers). The entry point (ops/interpolate.h) fills it after
// every check.
//
// Both modes reproduce torch's CPU kernels operation for operation in F32, so that the results are
// the same floats (kernels/cpu/bicubic.h says how):
//   antialias off: out[y, x] = sum_j wy_j(y) * (sum_k wx_k(x) * in[iy_j(y), ix_k(x)]), four taps
//     per axis from Keys' cubic convolution with A = -0.75 around src = scale * (dst + 0.5) - 0.5,
//     scale = in / out, indices clamped to the edge (upsample_bicubic2d); with align_corners,
//     src = scale * dst and scale = (in - 1) / (out - 1), in F32 as torch computes it;
//   antialias on: separable, the width first and then the height (an axis whose size does not
//     change is skipped, both unchanged is a copy), each output a normalised sum over the input
//     samples within `support` of its centre with PIL's cubic filter (A = -0.5), the filter
//     stretched by the scale when shrinking (_upsample_bicubic2d_aa).
//
// Layout: x F32 with any element strides; out a contiguous F32 [batch, channels, out_h, out_w].
#pragma once

#include <cstdint>

namespace hfport {

struct BicubicParams {
  int64_t batch = 0, channels = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;  // all >= 1
  bool antialias = false;
  // antialias off only: torch's align_corners=True, the corner samples aligned, src = dst *
  // (in - 1) / (out - 1) (0 for out = 1); CLAP's reshape_mel2img resizes the spectrogram so.
  bool align_corners = false;
  const float* x = nullptr;  // [batch, channels, in_h, in_w]
  int64_t x_batch_stride = 0, x_channel_stride = 0, x_row_stride = 0, x_col_stride = 0;
  float* out = nullptr;      // [batch, channels, out_h, out_w] contiguous; must not overlap x
};

}  // namespace hfport
