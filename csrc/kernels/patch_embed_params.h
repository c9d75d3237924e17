// The kernels' view of one patch embedding: a 2-D convolution whose stride equals its kernel, the
// first layer of every ViT (transformers' ViTPatchEmbeddings: Conv2d(kernel = stride = patch),
// then flatten(2).transpose(1, 2)). The entry point (ops/patch_embed.h) fills it after every check.
//
//   out[b, gy * grid_w + gx, o] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
//                                             * pixels[b, c, gy * patch_h + i, gx * patch_w + j]
//
// grid_h = height / patch_h and grid_w = width / patch_w, floored as a strided convolution floors
// them: the rows and columns past the last whole patch are not read.
//
// Layout: pixels NCHW with any element strides, F32, F16 or BF16; weight [hidden, channels *
// patch_h * patch_w] contiguous F32 (torch's [hidden, C, ph, pw] read flat); out a contiguous
// [batch, grid_h * grid_w, hidden] of the pixels' dtype, patches in row-major grid order. Sums are
// F32 and the result is rounded once to out's dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct PatchEmbedParams {
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  int64_t patch_h = 0, patch_w = 0;
  int64_t grid_h = 0, grid_w = 0;  // height / patch_h, width / patch_w (floored, >= 1)
  int64_t hidden = 0;
  DType dtype = DType::F32;        // of pixels and out
  const void* pixels = nullptr;    // [batch, channels, height, width]
  int64_t pixels_batch_stride = 0, pixels_channel_stride = 0, pixels_row_stride = 0,
          pixels_col_stride = 0;
  const float* weight = nullptr;   // [hidden, channels * patch_h * patch_w] contiguous
  const float* bias = nullptr;     // [hidden] or null
  void* out = nullptr;             // [batch, grid_h * grid_w, hidden] contiguous; no overlap
};

}  // namespace hfport
