// RMSNorm, LayerNorm and Mamba-2's gated RMSNorm over the last dimension on the CPU, on the NormParams both devices share
// (kernels/norm_params.h: the formulas, the layout and the rounding points). The entry points are
// hfport::rms_norm / layer_norm / rms_norm_gated (ops/norm.h).
//
// Rows are spread over threads; each row is two passes over memory that stays in cache (sum of
// squares in 16 independent F32 partial sums, so that the loop vectorises, then the scaled write).
#pragma once

#include "kernels/norm_params.h"

namespace hfport {

// On checked Params (host pointers; dtype F32, F16 or BF16; weight required for rms_norm).
void rms_norm_cpu(const NormParams& params);
void layer_norm_cpu(const NormParams& params);
// The CUDA twin is kernels/cuda/norm.cu.
void rms_norm_gated_cpu(const GatedRmsNormParams& params);

}  // namespace hfport
