// Mamba-1 selective scan on the CPU, and its one-step form for decoding.
//
// For each batch b and channel d, with a state h of N values starting at zero:
//   dt_t = delta[b,d,t] + delta_bias[d]           (then softplus(dt_t), torch's, threshold 20)
//   h_t  = exp(dt_t * A[d,:]) * h_{t-1} + dt_t * B_t * u[b,d,t]
//   y_t  = C_t . h_t + D[d] * u[b,d,t]             (then * silu(z[b,d,t]))
// B and C are either per channel and time invariant, [dim, N], or per batch and time, [batch, N, L],
// or grouped, [batch, G, N, L] with channel d reading group d / (dim / G) (mamba_ssm's shapes).
//
// Layout and precision: u, delta and z are [batch, dim, L] with any strides and share one dtype
// (F32, F16 or BF16); the output is a contiguous [batch, dim, L] of that dtype; the last state is a
// contiguous [batch, dim, N] F32. A, B, C, D and delta_bias may be any of the three float types and
// are read as F32; all arithmetic is F32.
//
// Why it is written this way: the recurrence is sequential in t but independent across channels,
// so the kernel takes 16 channels of one batch at a time, one per SIMD lane, and keeps their N
// states in a small [N][16] block that stays in L1; the loop over lanes has no cross-lane
// reduction, so the compiler vectorises it, exp included (a polynomial exp written for that).
// B and C are first packed to F32 [.., L, N] so that each time step reads N adjacent values.
// Blocks of channels are spread over threads.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace hfport {

struct SelectiveScanOptions {
  Tensor D;           // [dim], optional
  Tensor z;           // [batch, dim, L], optional: the output is multiplied by silu(z)
  Tensor delta_bias;  // [dim], optional
  bool delta_softplus = false;
  bool return_last_state = false;
  Tensor out;         // optional preallocated contiguous [batch, dim, L] of u's dtype
};

struct SelectiveScanResult {
  Tensor out;         // [batch, dim, L], u's dtype (F64 from the reference)
  Tensor last_state;  // [batch, dim, N], F32 (F64 from the reference); undefined unless asked
};

// The kernel's view of one call: dims, element strides, pointers. B and C are already packed.
struct SelectiveScanParams {
  int64_t batch = 0, dim = 0, seqlen = 0, dstate = 0;
  int64_t n_groups = 0;  // 0: B and C are time invariant [dim, N]; else [batch, G, L, N]
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

// Checks every argument (shapes, dtypes, device) and runs the kernel on the device of its tensors
// (all on one: DeviceError otherwise), the CPU or CUDA.
SelectiveScanResult selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A,
                                   const Tensor& B, const Tensor& C,
                                   const SelectiveScanOptions& options = {});

// The plain version the kernel is tested against: the same checks, then the recurrence as written
// above in float64, one channel and one step at a time. Outputs are F64.
SelectiveScanResult selective_scan_reference(const Tensor& u, const Tensor& delta, const Tensor& A,
                                             const Tensor& B, const Tensor& C,
                                             const SelectiveScanOptions& options = {});

struct SelectiveStateUpdateOptions {
  Tensor D;       // [dim], optional
  Tensor z;       // [batch, dim], optional
  Tensor dt_bias; // [dim], optional
  bool dt_softplus = false;
  Tensor out;     // optional preallocated contiguous [batch, dim] of x's dtype
};

// One decoding step of the scan above, on the CPU or CUDA like selective_scan. state [batch, dim, N] (F32, F16 or BF16, any strides) is
// updated in place: state = exp(dt * A) * state + dt * B * x, and y = C . state + D * x (times
// silu(z)) is returned as a contiguous [batch, dim] of x's dtype. x, dt and z are [batch, dim] of one
// dtype; B and C are [batch, N] or grouped [batch, G, N]. y is computed from the F32 new state
// before it is rounded to the state's dtype. L calls on the columns of a sequence equal one scan.
Tensor selective_state_update(const Tensor& state, const Tensor& x, const Tensor& dt,
                              const Tensor& A, const Tensor& B, const Tensor& C,
                              const SelectiveStateUpdateOptions& options = {});

// Float64 reference of one step; leaves `state` untouched and returns (y, new state), both F64.
struct SelectiveStateUpdateReference {
  Tensor y;      // [batch, dim]
  Tensor state;  // [batch, dim, N]
};
SelectiveStateUpdateReference selective_state_update_reference(
    const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
    const Tensor& C, const SelectiveStateUpdateOptions& options = {});

// The argument checks (dtypes, shapes; not the device) both ops run on either device: the CPU
// kernels and the CUDA side (kernels/cuda/selective_scan_op.cpp) share them.
struct ScanShapes {
  int64_t batch = 0, dim = 0, seqlen = 0, dstate = 0;
  int64_t n_groups = 0;  // 0: B and C are time invariant [dim, N]; 1 for [batch, N, L]; else G
};
ScanShapes check_selective_scan_arguments(const Tensor& u, const Tensor& delta, const Tensor& A,
                                          const Tensor& B, const Tensor& C,
                                          const SelectiveScanOptions& options);
struct UpdateShapes {
  int64_t batch = 0, dim = 0, dstate = 0;
  int64_t n_groups = 1;  // 1 for [batch, N] B and C
};
UpdateShapes check_selective_state_update_arguments(const Tensor& state, const Tensor& x,
                                                    const Tensor& dt, const Tensor& A,
                                                    const Tensor& B, const Tensor& C,
                                                    const SelectiveStateUpdateOptions& options);

}  // namespace hfport
