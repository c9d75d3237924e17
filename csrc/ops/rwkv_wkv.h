// RWKV-4's WKV (the time-mix recurrence) and its one-step form for decoding: the entry points
// (checks, operands, outputs; CPU kernel in kernels/cpu/rwkv_wkv.h) and the float64 reference.
//
// For each batch b and channel c, with w' = -exp(w[c]) the per-step decay (w is RWKV's stored
// time_decay) and u = time_first[c] the bonus of the current token:
//   y_t = (sum_{i<t} e^{(t-1-i) w' + k_i} v_i + e^{u + k_t} v_t)
//       / (sum_{i<t} e^{(t-1-i) w' + k_i}     + e^{u + k_t})
// where the sums also hold the incoming state, decayed. The state is kept as transformers keeps
// it, (num, den, max) standing for the sums num e^max and den e^max, updated with the max-tracking
// steps of rwkv_linear_attention_cpu (kernels/rwkv_wkv_params.h writes them out) so that no
// exponential overflows; without a state the sums start empty (num = den = 0, max = -1e38, as
// transformers). With a mask, a step whose entry is 0 is skipped: output 0, state unchanged, so a
// padded row gives what the row alone would (transformers' RWKV has no mask).
//
// Layout and precision: k and v [batch, L, C] share one dtype (F32, F16 or BF16) and may have any
// strides; the output is a contiguous [batch, L, C] of that dtype. w and u [C] and the incoming
// state [batch, C] are read as F32; the outgoing state is three contiguous F32 [batch, C]. All
// arithmetic is F32.
#pragma once

#include "core/tensor.h"
#include "kernels/rwkv_wkv_params.h"

namespace hfport {

struct RwkvWkvState {
  Tensor num, den, max;  // [batch, C] each
};

struct RwkvWkvOptions {
  RwkvWkvState state;  // optional: all three or none
  Tensor mask;         // optional [batch, L] of 0/1 (BOOL, U8, I32 or I64): 0 skips the step
  Tensor out;          // optional preallocated contiguous [batch, L, C] of k's dtype
};

struct RwkvWkvResult {
  Tensor out;          // [batch, L, C], k's dtype (F64 from the reference)
  RwkvWkvState state;  // after the last step: F32 (F64 from the reference)
};

// Checks every argument (ArgumentError naming it, with the expected and the given shape or
// dtype) and runs on the device of its tensors (all on one: DeviceError otherwise), the CPU
// kernel or the CUDA side (ops/cuda/rwkv_wkv.h).
RwkvWkvResult rwkv_wkv(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v,
                       const RwkvWkvOptions& options = {});

// The same checks, then the sums above in float64 from the exact inputs (running sums, no max
// tracking; the outgoing max is the running max the kernel's convention gives, and num, den the
// sums scaled by e^-max, so the states compare element for element). Outputs F64.
RwkvWkvResult rwkv_wkv_reference(const Tensor& w, const Tensor& u, const Tensor& k,
                                 const Tensor& v, const RwkvWkvOptions& options = {});

// One decoding step, on the device of its tensors: k and v [batch, C]; `state` (contiguous F32
// [batch, C] each) is updated in place and y [batch, C] of k's dtype returned. L calls on a
// sequence's steps equal one rwkv_wkv.
Tensor rwkv_wkv_update(const RwkvWkvState& state, const Tensor& w, const Tensor& u,
                       const Tensor& k, const Tensor& v);

// The argument checks both devices run (dtypes, shapes; not the device). Returns {batch, L, C};
// the update's has L = 1. A host mask's values are checked here, a CUDA mask's when the CUDA side
// brings it to the host.
struct RwkvWkvShapes {
  int64_t batch = 0, seqlen = 0, channels = 0;
};
RwkvWkvShapes check_rwkv_wkv_arguments(const Tensor& w, const Tensor& u, const Tensor& k,
                                       const Tensor& v, const RwkvWkvOptions& options);
RwkvWkvShapes check_rwkv_wkv_update_arguments(const RwkvWkvState& state, const Tensor& w,
                                              const Tensor& u, const Tensor& k, const Tensor& v);

// The kernels' Params both devices fill alike: the shapes, k and v with their strides, w and u
// (F32, contiguous, on the kernel's device). The callers add the state, the mask and the output.
RwkvWkvParams rwkv_wkv_base_params(const RwkvWkvShapes& s, const Tensor& k, const Tensor& v,
                                   const Tensor& w32, const Tensor& u32);
// The one-step update's Params: k and v [batch, C] seen as [batch, 1, C], the state (F32,
// contiguous, on the kernel's device) advanced in place, `out` [batch, C].
RwkvWkvParams rwkv_wkv_update_params(const RwkvWkvShapes& s, const Tensor& k, const Tensor& v,
                                     const Tensor& w32, const Tensor& u32,
                                     const RwkvWkvState& state, const Tensor& out);

// A host mask [batch, L] (BOOL, U8, I32 or I64) as a contiguous U8 host tensor of 0/1;
// ArgumentError for another dtype or shape, or a value other than 0 and 1.
Tensor rwkv_wkv_mask_u8(const Tensor& mask, int64_t batch, int64_t seqlen);

}  // namespace hfport
