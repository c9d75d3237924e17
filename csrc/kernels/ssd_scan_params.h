// The kernels' view of one Mamba-2 state-space-duality (SSD) scan and of its one-step update. The
// entry points (ops/ssd_scan.h) fill them after every check, with pointers on the device that
// runs the kernel (kernels/cpu/ssd_scan.h, kernels/cuda/ssd_scan.h).
//
// Per batch b and head h (head h reads B/C group g = h / (H / G)), with a state S of [P, N]:
//   dt_t = clamp(softplus?(dt[b,t,h] + dt_bias[h]), dt_min, dt_max)
//   S_t  = exp(dt_t * A[h]) * S_{t-1} + dt_t * x[b,t,h,:] (outer) B[b,t,g,:]
//   y_t  = S_t C[b,t,g,:] + D[h] * x[b,t,h,:]
// The CPU scan computes this chunk by chunk (ops/ssd_scan.h says how), the CUDA one step by step
// (chunk_size unused); the update takes one step.
//
// x, dt and out keep the caller's dtype (F32, F16 or BF16); x and dt are read through element
// strides. B and C arrive packed as F32 [batch, G, L, N] (scan) or [batch, G, N] (update). A, D
// and dt_bias are F32 [H]. States are F32 [batch, H, P, N] in the scan; the update's state has
// its own dtype and strides and is written in place. All arithmetic is F32.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct SsdScanParams {
  int64_t batch = 0, seqlen = 0, heads = 0, head_dim = 0, dstate = 0, n_groups = 0;
  int64_t chunk_size = 0;
  DType dtype = DType::F32;  // of x, dt and out
  const void* x = nullptr;   // [batch, L, H, P]
  int64_t x_batch_stride = 0, x_seq_stride = 0, x_head_stride = 0, x_dim_stride = 0;
  const void* dt = nullptr;  // [batch, L, H]
  int64_t dt_batch_stride = 0, dt_seq_stride = 0, dt_head_stride = 0;
  const float* A = nullptr;        // [H]
  const float* B = nullptr;        // [batch, G, L, N] contiguous
  const float* C = nullptr;        // [batch, G, L, N] contiguous
  const float* D = nullptr;        // [H] or null
  const float* dt_bias = nullptr;  // [H] or null
  bool dt_softplus = false;
  float dt_min = 0.0f, dt_max = 0.0f;  // the clamp; the entry point passes +inf for no upper bound
  const float* initial_states = nullptr;  // [batch, H, P, N] contiguous, or null (zeros)
  void* out = nullptr;                    // [batch, L, H, P] contiguous, x's dtype
  float* final_states = nullptr;          // [batch, H, P, N] contiguous, or null
};

struct SsdStateUpdateParams {
  int64_t batch = 0, heads = 0, head_dim = 0, dstate = 0, n_groups = 0;
  DType dtype = DType::F32;  // of x, dt and out
  const void* x = nullptr;   // [batch, H, P]
  int64_t x_batch_stride = 0, x_head_stride = 0, x_dim_stride = 0;
  const void* dt = nullptr;  // [batch, H]
  int64_t dt_batch_stride = 0, dt_head_stride = 0;
  DType state_dtype = DType::F32;
  void* state = nullptr;  // [batch, H, P, N], updated in place
  int64_t state_batch_stride = 0, state_head_stride = 0, state_dim_stride = 0,
          state_state_stride = 0;
  const float* A = nullptr;        // [H]
  const float* B = nullptr;        // [batch, G, N] contiguous
  const float* C = nullptr;        // [batch, G, N] contiguous
  const float* D = nullptr;        // [H] or null
  const float* dt_bias = nullptr;  // [H] or null
  bool dt_softplus = false;
  float dt_min = 0.0f, dt_max = 0.0f;
  void* out = nullptr;  // [batch, H, P] contiguous, x's dtype
};

}  // namespace hfport
