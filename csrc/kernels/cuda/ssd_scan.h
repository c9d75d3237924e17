// Mamba-2's state-space-duality scan and its one-step update on the GPU: the kernels behind
// hfport::ssd_scan / ssd_state_update for CUDA tensors (ops/cuda/ssd_scan.h), on the Params the
// CPU kernels take (kernels/ssd_scan_params.h states the recurrence, the layout and the
// precision). Host-callable; includes no CUDA header. All pointers are device pointers.
#pragma once

#include "kernels/ssd_scan_params.h"

namespace hfport::cuda {

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch. Throw
// ArgumentError for a dtype other than F32/F16/BF16 or a missing pointer.
//
// ssd_scan: params.final_states is required here (the kernel carries the state in it; the entry
// point passes a scratch buffer when the caller did not ask for the final states). chunk_size is
// not used: the kernel is the sequential recurrence (ssd_scan.cu says why). With seqlen 0 the
// final states are the initial ones (or zeros).
void ssd_scan(const SsdScanParams& params, void* stream);
void ssd_state_update(const SsdStateUpdateParams& params, void* stream);

}  // namespace hfport::cuda
