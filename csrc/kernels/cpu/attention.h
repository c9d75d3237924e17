// Scaled dot-product attention on the CPU: the kernel behind hfport::attention (ops/attention.h,
// which states the layout, positions, masking and precision), on the AttentionParams both devices
// share (kernels/attention_params.h), already checked by check_attention.
//
// Algorithm. Flash style: for each (batch, head, block of queries), walk the blocks of keys
// keeping a running row maximum and row sum (online softmax), so the [Sq, Sk] score matrix is
// never formed. Key blocks that causal masking or the window hide entirely are skipped. k is
// repacked once per call as f32 k^T blocks so that the q k^T micro-kernel streams unit-stride
// rows, except in calls of few query rows per kv head (decode), which read k's rows in place; on x86-64 the micro-kernels use AVX-512 or AVX2+FMA when the CPU has them (chosen at run
// time; HFPORT_ATTENTION_KERNELS=avx2 or =plain asks for less, for tests), else plain loops. Work
// is spread over batch x heads x query blocks with parallel_for.
#pragma once

#include "kernels/attention_params.h"

namespace hfport {

// On checked host pointers, with out (and lse, when set) allocated.
void attention_cpu(const AttentionParams& params);

}  // namespace hfport
