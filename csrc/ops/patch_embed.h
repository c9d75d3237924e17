// Patch embedding: the entry point of the 2-D convolution whose stride equals its kernel that
// starts every ViT (ViT, DINOv2), computed as unfold + GEMM by kernels/cpu/patch_embed.h.
//
//   out[b, gy * grid_w + gx, o] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
//                                             * pixels[b, c, gy * ph + i, gx * pw + j]
//
// which is torch's conv2d(pixels, weight, bias, stride=(ph, pw)).flatten(2).transpose(1, 2), the
// [batch, patches, hidden] sequence transformers' ViTPatchEmbeddings returns. grid_h = H / ph and
// grid_w = W / pw are floored as the strided convolution floors them (the pixels past the last whole
// patch are not read); an image smaller than one patch is an error.
//
// Layout and precision: pixels [batch, channels, H, W] (NCHW) with any strides, F32, F16 or BF16;
// weight [hidden, channels, ph, pw] and bias [hidden] of any float dtype, read as F32; the output
// is a contiguous [batch, grid_h * grid_w, hidden] of the pixels' dtype. Sums are F32, rounded
// once. CPU only: tensors on a GPU raise DeviceError.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/patch_embed_params.h"

namespace hfport {

// The patch's height and width; the weight's last two dimensions must equal them.
struct PatchSize {
  int64_t h = 0, w = 0;
};

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                   PatchSize patch, const Tensor& out = Tensor());

// Float64 reference straight from the formula above (every product in float64 from the exact
// inputs); returns F64 [batch, grid_h * grid_w, hidden].
Tensor patch_embed_reference(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                             PatchSize patch);

// The checks both share (dtypes, shapes; not the device): the problem they describe, as Params
// without pointers.
PatchEmbedParams check_patch_embed_arguments(const Tensor& pixels, const Tensor& weight,
                                             const Tensor& bias, PatchSize patch);

}  // namespace hfport
