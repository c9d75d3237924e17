// Attention on the GPU: the op of ops/attention.h, on the already checked AttentionParams that the
// entry point fills (kernels/attention_params.h, the same struct for both devices: dims, element
// strides in bhsd order, raw device pointers). Host-callable; includes no CUDA header.
//
// Two kernels stand behind hfport.ops.attention on CUDA:
//   attention_simple  every case the CPU op takes (f32/f16/bf16, any head dim up to
//                     kMaxSimpleHeadDim, attn_mask, key padding, sliding window, causal with
//                     bottom-right alignment, GQA, lse). One block per (batch, head, query block),
//                     online softmax in f32, no tensor cores: the correct path, and the fallback.
//   flash_attention   (kernels/cuda/flash_attention.h) tensor-core kernel for f16/bf16 and the
//                     head dims it was built for, used when flash_attention_supports(params).
#pragma once

#include <cstdint>

#include "kernels/attention_params.h"

namespace hfport::cuda {

inline constexpr int64_t kMaxSimpleHeadDim = 512;

// Launches on `stream` (a cudaStream_t; nullptr is the legacy default stream) and checks the
// launch. ArgumentError when head_dim or v_dim exceeds kMaxSimpleHeadDim.
void attention_simple(const AttentionParams& params, void* stream);

}  // namespace hfport::cuda
