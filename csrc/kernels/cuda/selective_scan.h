// Mamba-1 selective scan and its one-step update on the GPU: the kernels behind
// hfport::selective_scan / selective_state_update (ops/selective_scan.h) for tensors on a CUDA
// device, on device pointers. Host-callable; includes no CUDA header.
//
// For each batch b and channel d, with a state h of N values starting at zero:
//   dt_t = delta[b,d,t] + delta_bias[d]           (then softplus(dt_t), torch's, threshold 20)
//   h_t  = exp(dt_t * A[d,:]) * h_{t-1} + dt_t * B_t * u[b,d,t]
//   y_t  = C_t . h_t + D[d] * u[b,d,t]             (then * silu(z[b,d,t]))
// B and C are time invariant [dim, N] (n_groups = 0) or per batch, group and time,
// [batch, G, N, L] (n_groups = G >= 1; channel d reads group d / (dim / G); [batch, N, L] is G = 1
// with a zero group stride). Unlike the CPU kernel, B and C are read in place through their
// strides, in their own dtype: nothing is packed first.
//
// u, delta and z share one dtype (F32, F16, BF16) and have any element strides; out is a contiguous
// [batch, dim, L] of that dtype; last_state, when asked for, a contiguous F32 [batch, dim, N].
// A [dim, N], D [dim] and delta_bias [dim] are contiguous, each in its own dtype (any of the
// three). All arithmetic is F32. N is at most kMaxScanState.
//
// The update is one step of the same recurrence on a state kept by the caller: state [batch, dim, N]
// (any of the three dtypes, any strides) becomes exp(dt * A) * state + dt * B * x in place and
// y = C . state + D * x (times silu(z)) is returned as a contiguous [batch, dim] of x's dtype; y is
// computed from the F32 new state before it is rounded to the state's dtype, as on the CPU.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/selective_scan_params.h"

namespace hfport::cuda {

// The largest state size the kernels take (mamba_ssm's limit too): the scan carries one f32 per
// state through shared memory between chunks, 256 of them.
inline constexpr int64_t kMaxScanState = 256;

struct SelectiveScanParams {
  int64_t batch = 0, dim = 0, seqlen = 0, dstate = 0;
  int64_t n_groups = 0;  // 0: B and C are [dim, N]; G >= 1: [batch, G, N, L]; G divides dim
  DType dtype = DType::F32;  // of u, delta, z and out
  const void* u = nullptr;
  int64_t u_batch_stride = 0, u_dim_stride = 0, u_seq_stride = 0;
  const void* delta = nullptr;
  int64_t delta_batch_stride = 0, delta_dim_stride = 0, delta_seq_stride = 0;
  const void* z = nullptr;  // may be null
  int64_t z_batch_stride = 0, z_dim_stride = 0, z_seq_stride = 0;
  DType A_dtype = DType::F32;
  const void* A = nullptr;  // [dim, N] contiguous
  DType B_dtype = DType::F32;
  const void* B = nullptr;
  // n_groups = 0: element (d, n) at d * B_dim_stride + n * B_state_stride.
  // n_groups >= 1: element (b, g, n, t) at b * B_batch_stride + g * B_group_stride +
  //                n * B_state_stride + t * B_seq_stride.
  int64_t B_dim_stride = 0, B_batch_stride = 0, B_group_stride = 0, B_state_stride = 0,
          B_seq_stride = 0;
  DType C_dtype = DType::F32;
  const void* C = nullptr;  // as B, with its own strides
  int64_t C_dim_stride = 0, C_batch_stride = 0, C_group_stride = 0, C_state_stride = 0,
          C_seq_stride = 0;
  DType D_dtype = DType::F32;
  const void* D = nullptr;           // [dim] or null
  DType delta_bias_dtype = DType::F32;
  const void* delta_bias = nullptr;  // [dim] or null
  bool delta_softplus = false;
  void* out = nullptr;               // [batch, dim, L] contiguous; must not overlap the inputs
  float* last_state = nullptr;       // [batch, dim, N] contiguous F32, or null
};

struct SelectiveStateUpdateParams : SelectiveStateUpdateStep {  // kernels/selective_scan_params.h
  DType A_dtype = DType::F32;
  const void* A = nullptr;  // [dim, N] contiguous
  DType B_dtype = DType::F32;
  const void* B = nullptr;  // element (b, g, n) at b * B_batch_stride + g * B_group_stride + n * B_state_stride
  int64_t B_batch_stride = 0, B_group_stride = 0, B_state_stride = 0;
  DType C_dtype = DType::F32;
  const void* C = nullptr;
  int64_t C_batch_stride = 0, C_group_stride = 0, C_state_stride = 0;
  DType D_dtype = DType::F32;
  const void* D = nullptr;        // [dim] or null
  DType dt_bias_dtype = DType::F32;
  const void* dt_bias = nullptr;  // [dim] or null
  bool dt_softplus = false;
  void* out = nullptr;            // [batch, dim] contiguous; must not overlap the inputs or the state
};

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch. Throw
// ArgumentError for a dtype other than F32/F16/BF16, N outside [1, kMaxScanState], or a group
// count that does not divide dim.
void selective_scan(const SelectiveScanParams& params, void* stream);
void selective_state_update(const SelectiveStateUpdateParams& params, void* stream);

}  // namespace hfport::cuda
