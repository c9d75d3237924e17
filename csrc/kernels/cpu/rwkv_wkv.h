// RWKV-4's WKV recurrence on the CPU: the kernel behind hfport::rwkv_wkv and rwkv_wkv_update
// (ops/rwkv_wkv.h), on host pointers the entry points have checked (kernels/rwkv_wkv_params.h
// states the recurrence).
//
// Why it is written this way: the recurrence is sequential in t and independent across channels,
// and one time step's channels are adjacent in k and v ([batch, L, C]). So a work item is a block
// of 64 channels of one batch row, its (num, den, max) state held in three small arrays; each step
// is one loop over the block's channels with no cross-channel work, which the compiler vectorises,
// the exps included (exp_vectorizable). Of the two exps of each max-tracking pair, the one of the
// larger argument is exp(0) = 1, so a step takes two exponentials instead of four. transformers'
// CPU path runs the same step as a dozen torch ops per token, each over the whole [batch, C] state.
#pragma once

#include "kernels/rwkv_wkv_params.h"

namespace hfport {

// On checked Params with at least one step and one channel.
void rwkv_wkv_cpu(const RwkvWkvParams& params);

}  // namespace hfport
