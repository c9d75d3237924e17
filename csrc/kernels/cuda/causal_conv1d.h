// Depthwise causal 1-D convolution (Mamba's short conv) and its one-step update on the GPU, on the
// Params both devices share (kernels/causal_conv1d_params.h: the formula, the state and the
// layouts). Host-callable; includes no CUDA header. All pointers are device pointers.
#pragma once

#include "kernels/causal_conv1d_params.h"

namespace hfport::cuda {

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch. Throw
// ArgumentError for a dtype other than F32/F16/BF16, width < 1, or S < width - 1.
void causal_conv1d(const CausalConv1dParams& params, void* stream);
void causal_conv1d_update(const CausalConv1dUpdateParams& params, void* stream);

}  // namespace hfport::cuda
