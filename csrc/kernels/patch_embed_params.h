// The kernels' view of one patch embedding: a 2-D or 3-D convolution whose stride equals its
// kernel, the first layer of every ViT (transformers' ViTPatchEmbeddings: Conv2d(kernel = stride =
// patch), then flatten(2).transpose(1, 2)) and of VideoMAE (Conv3d over tubelets of patch_t
// frames). The entry point (ops/patch_embed.h) fills it after every check. A 2-D call is a 3-D one
// with one frame and patch_t = 1.
//
//   out[b, (gt * grid_h + gy) * grid_w + gx, o] = bias[o] + sum_{c, k, i, j} weight[o, c, k, i, j]
//       * pixels[b, c, gt * patch_t + k, gy * patch_h + i, gx * patch_w + j]
//
// grid_t = frames / patch_t, grid_h = height / patch_h and grid_w = width / patch_w, floored as a
// strided convolution floors them: what lies past the last whole patch is not read.
//
// Layout: pixels [batch, channels, frames, height, width] with any element strides (a 2-D image has
// frames = 1 and a time stride of 0), F32, F16 or BF16; weight [hidden, channels * patch_t *
// patch_h * patch_w] contiguous F32 (torch's [hidden, C, (pt,) ph, pw] read flat); out a contiguous
// [batch, grid_t * grid_h * grid_w, hidden] of the pixels' dtype, patches in row-major grid order.
// Sums are F32 and the result is rounded once to out's dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct PatchEmbedParams {
  int64_t batch = 0, channels = 0, frames = 1, height = 0, width = 0;
  int64_t patch_t = 1, patch_h = 0, patch_w = 0;
  int64_t grid_t = 1, grid_h = 0, grid_w = 0;  // frames / patch_t, ... (floored, >= 1)
  int64_t hidden = 0;
  DType dtype = DType::F32;        // of pixels and out
  const void* pixels = nullptr;    // [batch, channels, frames, height, width]
  int64_t pixels_batch_stride = 0, pixels_channel_stride = 0, pixels_time_stride = 0,
          pixels_row_stride = 0, pixels_col_stride = 0;
  const float* weight = nullptr;   // [hidden, channels * patch_t * patch_h * patch_w] contiguous
  const float* bias = nullptr;     // [hidden] or null
  void* out = nullptr;             // [batch, grid_h * grid_w, hidden] contiguous; no overlap
};

}  // namespace hfport
