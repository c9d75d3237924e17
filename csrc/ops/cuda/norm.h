// The Tensor-level CUDA side of hfport::rms_norm / layer_norm / rms_norm_gated (ops/norm.h) for
// tensors on a CUDA device: the same checks and results, on hfport's work stream, through the
// kernels of kernels/cuda/norm.h. x, residual and gate are read in place when contiguous (else
// copied once); weight and bias go to contiguous F32. `out` may be x itself; the residual sum is a
// fresh tensor. Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/norm.h"

namespace hfport::cuda {

RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps,
                       const RmsNormOptions& options);
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& out);
Tensor rms_norm_gated(const Tensor& x, const Tensor& weight, double eps,
                      const GatedRmsNormOptions& options);

}  // namespace hfport::cuda
