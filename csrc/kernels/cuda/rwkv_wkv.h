// RWKV-4's WKV recurrence on the GPU: the kernel behind hfport::rwkv_wkv and rwkv_wkv_update for
// CUDA tensors (ops/cuda/rwkv_wkv.h), on the RwkvWkvParams the CPU kernel takes
// (kernels/rwkv_wkv_params.h states the recurrence, the layout and the precision). Host-callable;
// includes no CUDA header. All pointers are device pointers.
#pragma once

#include "kernels/rwkv_wkv_params.h"

namespace hfport::cuda {

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch. Throws
// ArgumentError for a dtype other than F32/F16/BF16 or a missing pointer. Does nothing for an
// empty batch, sequence or channel count.
void rwkv_wkv(const RwkvWkvParams& params, void* stream);

}  // namespace hfport::cuda
