// Mamba-1 selective scan and its one-step update on the CPU: the kernels behind
// hfport::selective_scan / selective_state_update (ops/selective_scan.h, which states the
// recurrence), on host pointers the entry points have checked and prepared.
//
// Why it is written this way: the recurrence is sequential in t but independent across channels,
// so the kernel takes 16 channels of one batch at a time, one per SIMD lane, and keeps their N
// states in a small [N][16] block that stays in L1; the loop over lanes has no cross-lane
// reduction, so the compiler vectorises it, exp included (a polynomial exp written for that).
// B and C are first packed to F32 [.., L, N] (by the entry point) so that each time step reads N
// adjacent values. Blocks of channels are spread over threads.
//
// These Params are the CPU's own: A, B, C, D and the biases arrive as packed F32, where the CUDA
// kernels (kernels/cuda/selective_scan.h) read them in place through strides in their own dtypes.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/selective_scan_params.h"

namespace hfport {

// The scan kernel's view of one call: dims, element strides, pointers. B and C are already packed.
struct SelectiveScanParams {
  int64_t batch = 0, dim = 0, seqlen = 0, dstate = 0;
  int64_t n_groups = 0;  // 0: B and C are time invariant [dim, N]; else [batch, G, L, N]
  DType dtype = DType::F32;  // of u, delta, z and out: F32, F16 or BF16
  const void* u = nullptr;
  int64_t u_batch_stride = 0, u_dim_stride = 0, u_seq_stride = 0;
  const void* delta = nullptr;
  int64_t delta_batch_stride = 0, delta_dim_stride = 0, delta_seq_stride = 0;
  const void* z = nullptr;  // may be null
  int64_t z_batch_stride = 0, z_dim_stride = 0, z_seq_stride = 0;
  const float* A = nullptr;           // [dim, N] contiguous
  const float* B = nullptr;           // packed, see n_groups
  const float* C = nullptr;
  const float* D = nullptr;           // [dim] or null
  const float* delta_bias = nullptr;  // [dim] or null
  bool delta_softplus = false;
  void* out = nullptr;                // [batch, dim, L] contiguous, u's dtype
  float* last_state = nullptr;        // [batch, dim, N] contiguous, or null
};

// The update kernel's view of one step: x, dt, z and the state through their strides, the rest
// packed F32.
struct SelectiveStateUpdateParams : SelectiveStateUpdateStep {  // kernels/selective_scan_params.h
  const float* A = nullptr;        // [dim, N] contiguous
  const float* B = nullptr;        // [batch, G, N] contiguous
  const float* C = nullptr;
  const float* D = nullptr;        // [dim] or null
  const float* dt_bias = nullptr;  // [dim] or null
  bool dt_softplus = false;
  void* out = nullptr;             // [batch, dim] contiguous, x's dtype
};

// On checked Params with at least one element (the entry point handles empty inputs).
void selective_scan_cpu(const SelectiveScanParams& params);
void selective_state_update_cpu(const SelectiveStateUpdateParams& params);

}  // namespace hfport
