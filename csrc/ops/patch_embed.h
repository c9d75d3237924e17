// Patch embedding: the entry point of the convolution whose stride equals its kernel that starts
// every ViT (2-D: ViT, DINOv2) and VideoMAE (3-D, over tubelets of frames), computed as unfold +
// GEMM by kernels/cpu/patch_embed.h.
//
//   out[b, gy * grid_w + gx, o] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
//                                             * pixels[b, c, gy * ph + i, gx * pw + j]
//
// which is torch's conv2d(pixels, weight, bias, stride=(ph, pw)).flatten(2).transpose(1, 2), the
// [batch, patches, hidden] sequence transformers' ViTPatchEmbeddings returns; for 5-D pixels
// [batch, channels, T, H, W] and a weight [hidden, channels, pt, ph, pw], conv3d with stride
// (pt, ph, pw), the patches in (tubelet, row, column) order. grid_t = T / pt, grid_h = H / ph and
// grid_w = W / pw are floored as the strided convolution floors them (what lies past the last whole
// patch is not read); pixels smaller than one patch are an error.
//
// Layout and precision: pixels NCHW or NCTHW with any strides, F32, F16 or BF16; weight and bias
// [hidden] of any float dtype, read as F32; the output is a contiguous [batch, patches, hidden] of
// the pixels' dtype. Sums are F32, rounded once. On a CUDA device (ops/cuda/patch_embed.h): the
// same result from a strided gather and a cuBLASLt GEMM (compiled, not yet run on a GPU).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/patch_embed_params.h"

namespace hfport {

// The patch's height and width (and frames, for 5-D pixels); the weight's trailing dimensions must
// equal them.
struct PatchSize {
  int64_t h = 0, w = 0;
  int64_t t = 1;
};

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                   PatchSize patch, const Tensor& out = Tensor());

// Float64 reference straight from the formula above (every product in float64 from the exact
// inputs); returns F64 [batch, grid_t * grid_h * grid_w, hidden].
Tensor patch_embed_reference(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                             PatchSize patch);

// The checks both share (dtypes, shapes; not the device): the problem they describe, as Params
// without pointers.
PatchEmbedParams check_patch_embed_arguments(const Tensor& pixels, const Tensor& weight,
                                             const Tensor& bias, PatchSize patch);

}  // namespace hfport
