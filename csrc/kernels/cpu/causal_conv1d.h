// Depthwise causal 1-D convolution and its update on the CPU, on the Params both devices share
// (kernels/causal_conv1d_params.h: the formula, the state and the layouts). The entry points are
// hfport::causal_conv1d / causal_conv1d_update (ops/causal_conv1d.h).
//
// Work is spread over the batch x dim channels; each channel is a short sequential loop. The full
// convolution reads one channel of x into a zero-padded row first, so out may be x here.
#pragma once

#include "kernels/causal_conv1d_params.h"

namespace hfport {

// On checked Params: host pointers, dtypes F32, F16 or BF16, width >= 1, state_len >= width - 1.
void causal_conv1d_cpu(const CausalConv1dParams& params);
void causal_conv1d_update_cpu(const CausalConv1dUpdateParams& params);

}  // namespace hfport
