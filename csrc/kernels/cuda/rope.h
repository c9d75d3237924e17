// Rotary position embeddings on the GPU: the rotation of one tensor on the RopeParams both devices
// share (kernels/rope_params.h: layout, strides, tables, rounding). Host-callable; includes no
// CUDA header. All pointers are device pointers.
//
// One call rotates one tensor (q, or k: they may have different head counts, so a caller makes one
// call for each, like rope_cpu).
#pragma once

#include "kernels/rope_params.h"

namespace hfport::cuda {

// Launches on `stream` (a cudaStream_t; nullptr is the default stream) and checks the launch.
// Throws ArgumentError for a dtype other than F32/F16/BF16 or an odd or too large rotary_dim.
// out may equal x (each element is read before it is written, by the thread that writes it); any
// other overlap is undefined.
void rope(const RopeParams& params, void* stream);

}  // namespace hfport::cuda
