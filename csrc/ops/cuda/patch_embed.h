// The CUDA side of hfport::patch_embed (ops/patch_embed.h) for tensors on a CUDA device. A
// convolution whose stride equals its kernel reads every pixel once, so unfolding it is a pure
// permutation of a strided view of the pixels: [B, C, gh, ph, gw, pw] -> [B, gh, gw, C, ph, pw]
// (with frames, [B, C, gt, pt, gh, ph, gw, pw] -> [B, gt, gh, gw, C, pt, ph, pw]), gathered into a
// contiguous [B, patches, C * pt * ph * pw] by the device's strided copy (core/cuda/convert.h),
// then one linear (cuBLASLt, the bias in its epilogue) with the weight seen as [hidden, C * pt *
// ph * pw]. As on the host, the pixels and the weight are read as F32 (the gather converts them)
// and the sums are F32 (no TF32), rounded once to the pixels' dtype. Compiled only in builds with
// CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/patch_embed.h"

namespace hfport::cuda {

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                   PatchSize patch, const Tensor& out);

}  // namespace hfport::cuda
