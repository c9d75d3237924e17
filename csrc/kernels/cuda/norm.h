// RMSNorm, LayerNorm and Mamba-2's gated grouped RMSNorm over the last dimension on the GPU, on the
// Params structs both devices share (kernels/norm_params.h: the formulas, the layout and the
// rounding points, the same as the CPU kernels'). Host-callable; includes no CUDA header. All
// pointers are device pointers.
#pragma once

#include "kernels/norm_params.h"

namespace hfport::cuda {

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch.
// Throw ArgumentError for a dtype other than F32/F16/BF16 or a missing required pointer.
void rms_norm(const NormParams& params, void* stream);
void layer_norm(const NormParams& params, void* stream);
// Also ArgumentError when group_size does not divide cols.
void rms_norm_gated(const GatedRmsNormParams& params, void* stream);

}  // namespace hfport::cuda
