// Mamba-2's state-space-duality (SSD) scan and its one-step form for decoding: the entry points
// (checks, operands, outputs; CPU kernels in kernels/cpu/ssd_scan.h) and their float64 references.
//
// For each batch b and head h, with H heads of P channels reading group g = h / (H / G) of B and
// C, and a state S of [P, N] that starts at initial_states (or zero):
//   dt_t = clamp(dt[b,t,h] + dt_bias[h], dt_min, dt_max)   (softplus, torch's with threshold 20,
//                                                            before the clamp when asked)
//   S_t  = exp(dt_t A[h]) S_{t-1} + dt_t x[b,t,h,:] B[b,t,g,:]^T
//   y[b,t,h,:] = S_t C[b,t,g,:] + D[h] x[b,t,h,:]
// A is one scalar per head (Mamba-2's A = -exp(A_log)), which is what makes the chunked form
// possible: within a chunk of chunk_size steps, with cs_t the running sum of dt A,
//   y_t = sum_{s <= t} (C_t . B_s) exp(cs_t - cs_s) dt_s x_s  +  exp(cs_t) S_in C_t  +  D x_t
// and the state leaving the chunk is exp(cs_last) S_in + sum_s exp(cs_last - cs_s) dt_s x_s B_s^T.
// This is transformers' torch_forward (and mamba_ssm's mamba_chunk_scan_combined) without z:
// Mamba-2 gates in its norm (rms_norm_gated, ops/norm.h). chunk_size changes only the rounding.
//
// Layout and precision: x [batch, L, H, P] and dt [batch, L, H] share one dtype (F32, F16 or
// BF16) and may have any strides; out is a contiguous [batch, L, H, P] of that dtype. B and C are
// [batch, L, G, N] of any float type and strides. A, D, dt_bias [H] and initial_states [batch, H,
// P, N] are read as F32; the final states are a contiguous F32 [batch, H, P, N] (the layout of
// transformers' recurrent_states). All arithmetic is F32, except the running sums of dt A, which
// are float64 (kernels/cpu/ssd_scan.h says why).
#pragma once

#include <cstdint>
#include <limits>

#include "core/tensor.h"
#include "kernels/ssd_scan_params.h"

namespace hfport {

struct SsdScanOptions {
  int64_t chunk_size = 256;  // Mamba2Config's default; >= 1
  Tensor D;                  // [H], optional
  Tensor dt_bias;            // [H], optional
  bool dt_softplus = false;
  // transformers' time_step_limit; the default (0, inf) leaves a softplus'd dt as it is.
  double dt_min = 0.0;
  double dt_max = std::numeric_limits<double>::infinity();
  Tensor initial_states;     // [batch, H, P, N], optional (zeros)
  bool return_final_states = false;
  Tensor out;                // optional preallocated contiguous [batch, L, H, P] of x's dtype
};

struct SsdScanResult {
  Tensor out;           // [batch, L, H, P], x's dtype (F64 from the reference)
  Tensor final_states;  // [batch, H, P, N], F32 (F64 from the reference); undefined unless asked
};

// Checks every argument (ArgumentError naming it, with the expected and the given shape or
// dtype) and runs on the device of its tensors (all on one: DeviceError otherwise): the chunked
// CPU kernel, or the CUDA side (ops/cuda/ssd_scan.h), which runs the sequential recurrence.
SsdScanResult ssd_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                       const Tensor& C, const SsdScanOptions& options = {});

// The same checks, then the recurrence above in float64, one step at a time (no chunks; the
// reference ignores chunk_size beyond checking it). Outputs F64; final_states always filled.
SsdScanResult ssd_scan_reference(const Tensor& x, const Tensor& dt, const Tensor& A,
                                 const Tensor& B, const Tensor& C,
                                 const SsdScanOptions& options = {});

struct SsdStateUpdateOptions {
  Tensor D;        // [H], optional
  Tensor dt_bias;  // [H], optional
  bool dt_softplus = false;
  double dt_min = 0.0;
  double dt_max = std::numeric_limits<double>::infinity();
  Tensor out;      // optional preallocated contiguous [batch, H, P] of x's dtype
};

// One decoding step, on the device of its tensors: state [batch, H, P, N] (F32, F16 or BF16, any
// strides) is updated in place, S = exp(dt A) S + dt x B^T, and y = S C + D x is returned as a
// contiguous [batch, H, P] of x's dtype. x [batch, H, P] and dt [batch, H] share one dtype; B and C
// are [batch, G, N]. y is computed from the F32 new state before it is rounded to the state's
// dtype. L calls on the steps of a sequence equal one ssd_scan with the same options.
Tensor ssd_state_update(const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A,
                        const Tensor& B, const Tensor& C, const SsdStateUpdateOptions& options = {});

// Float64 reference of one step; leaves `state` untouched and returns (y, new state), both F64.
struct SsdStateUpdateReference {
  Tensor y;      // [batch, H, P]
  Tensor state;  // [batch, H, P, N]
};
SsdStateUpdateReference ssd_state_update_reference(const Tensor& state, const Tensor& x,
                                                   const Tensor& dt, const Tensor& A,
                                                   const Tensor& B, const Tensor& C,
                                                   const SsdStateUpdateOptions& options = {});

// The argument checks both ops run (dtypes, shapes, the dt limits, chunk_size; not the device).
struct SsdShapes {
  int64_t batch = 0, seqlen = 0, heads = 0, head_dim = 0, dstate = 0, n_groups = 0;
};
SsdShapes check_ssd_scan_arguments(const Tensor& x, const Tensor& dt, const Tensor& A,
                                   const Tensor& B, const Tensor& C,
                                   const SsdScanOptions& options);
SsdShapes check_ssd_state_update_arguments(const Tensor& state, const Tensor& x, const Tensor& dt,
                                           const Tensor& A, const Tensor& B, const Tensor& C,
                                           const SsdStateUpdateOptions& options);

// The F32 operands each device prepares on itself before a launch: A, B and C as its kernel reads
// them, D, dt_bias and the initial states (undefined when absent).
struct SsdF32Operands {
  Tensor A, B, C, D, dt_bias, initial_states;
};
// The kernels' Params, filled alike for both devices from the checked shapes, x, dt (and the
// update's state) as given, the prepared operands and the outputs (final_states: F32 [batch, H,
// P, N] or undefined).
SsdScanParams ssd_scan_params(const SsdShapes& s, const Tensor& x, const Tensor& dt,
                              const SsdF32Operands& f32, const SsdScanOptions& options,
                              const Tensor& out, const Tensor& final_states);
SsdStateUpdateParams ssd_state_update_params(const SsdShapes& s, const Tensor& state,
                                             const Tensor& x, const Tensor& dt,
                                             const SsdF32Operands& f32,
                                             const SsdStateUpdateOptions& options,
                                             const Tensor& out);

}  // namespace hfport
