// Patch embedding on the CPU as unfold + GEMM, on the Params of kernels/patch_embed_params.h (the
// formula and the layouts). The entry point is hfport::patch_embed (ops/patch_embed.h).
//
// Why unfold + GEMM: a convolution whose stride equals its kernel reads every pixel exactly once,
// so copying each patch into one row of a [patches, channels * ph * pw] F32 matrix (im2col without
// overlap) costs one pass over the image, and the convolution becomes one sgemm against the
// [hidden, channels * ph * pw] weight, at BLAS speed, with the bias written first (linear's GEMM).
// The unfold is spread over (image, patch row) pairs; F16/BF16 pixels are widened while unfolding,
// and the F32 product is rounded once into out.
#pragma once

#include "kernels/patch_embed_params.h"

namespace hfport {

// On checked Params: host pointers, dtype F32, F16 or BF16, grid_h and grid_w >= 1.
void patch_embed_cpu(const PatchEmbedParams& params);

}  // namespace hfport
