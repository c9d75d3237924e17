// Mamba-2's state-space-duality scan and its one-step update on the CPU: the kernels behind
// hfport::ssd_scan / ssd_state_update (ops/ssd_scan.h states the recurrence and the chunked
// form), on host pointers the entry points have checked and prepared (kernels/ssd_scan_params.h).
//
// Why it is written this way: within a chunk of Q steps the scan is a masked matrix product
// (y = (C B^T o L) (x dt), L the decay between two steps), so the work is dense and vectorises
// over the head dimension P; between chunks only the [P, N] state is carried. One work item is a
// batch row, a B/C group and a block of that group's heads: C B^T of a chunk is computed once per
// item and shared by its heads (it depends on the group, not the head), and the blocks are sized
// so that there are about twice as many items as threads. The decay exponents are cumulative
// sums of dt * A kept in float64, so exp(cs_t - cs_s) loses nothing to cancellation even when
// the sums reach hundreds (a float32 difference of two such sums is only good to ~1e-5).
// Buffers indexed by P are padded to a multiple of 16 floats, so that the inner loops run over
// whole 16-float tiles held in registers.
#pragma once

#include "kernels/ssd_scan_params.h"

namespace hfport {

// On checked Params with seqlen >= 1 (the entry point handles empty inputs).
void ssd_scan_cpu(const SsdScanParams& params);
void ssd_state_update_cpu(const SsdStateUpdateParams& params);

}  // namespace hfport
