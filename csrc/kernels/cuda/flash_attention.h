// Fused flash attention forward on tensor cores (issue 7): f16/bf16 q, k, v with f32 accumulation,
// on the AttentionParams of kernels/attention_params.h. Host-callable; includes no CUDA header.
#pragma once

#include "kernels/attention_params.h"

namespace hfport::cuda {

// Whether flash_attention takes this call (dtype, head dims, layout strides, masks); when it does
// not, the entry point runs attention_simple instead.
bool flash_attention_supports(const AttentionParams& params);

// Launches on `stream` and checks the launch. ArgumentError when !flash_attention_supports(params).
void flash_attention(const AttentionParams& params, void* stream);

}  // namespace hfport::cuda
