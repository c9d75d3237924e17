// Mamba-1 selective scan and its one-step form for decoding: the entry points, on the device of
// their tensors (the CPU kernels of kernels/cpu/selective_scan.h, or the CUDA side,
// ops/cuda/selective_scan.h).
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
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/selective_scan_params.h"

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
// paths and the CUDA side (ops/cuda/selective_scan.cpp) share them.
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

// The part of the state update's Params that both devices fill the same way (checked tensors,
// on the device that runs the kernel; z may be undefined).
void fill_state_update_step(SelectiveStateUpdateStep& step, const UpdateShapes& shapes,
                            const Tensor& state, const Tensor& x, const Tensor& dt,
                            const Tensor& z);

}  // namespace hfport
