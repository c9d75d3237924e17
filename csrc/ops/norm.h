// RMSNorm, LayerNorm and Mamba-2's gated RMSNorm over the last dimension: the entry points, on the device of their tensors
// (the CPU kernels of kernels/cpu/norm.h, or the CUDA side, ops/cuda/norm.h).
//
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * w            (LLaMA, Mistral, Qwen, Mamba)
//               y = x / sqrt(mean(x^2) + eps) * (1 + w)      (add_unit_offset: Gemma)
//   with a residual: s = x + residual first; returns (rms_norm(s), s), the fused residual add of a
//   pre-norm block.
//   layer_norm: y = (x - mean(x)) / sqrt(var(x) + eps) * w + b   (biased variance, as torch)
//   rms_norm_gated: v = x * silu(gate), then per group of group_size columns
//               y = v / sqrt(mean(v^2) + eps) * w   (Mamba-2's MambaRMSNormGated: gate first,
//               then normalise; transformers' class normalises the whole row, group_size = hidden,
//               mamba_ssm's RMSNormGated groups of d_inner / n_groups)
//
// Precision follows transformers: statistics and the product are F32 whatever x's dtype. For F16 and
// BF16 inputs, LlamaRMSNorm rounds x * rsqrt(...) to the input dtype before multiplying by the
// weight, and GemmaRMSNorm rounds once at the end; rms_norm does the same in each mode. The residual
// sum is rounded to x's dtype (as the model's own add is) before it is normalised. Outputs have x's
// dtype and shape and are contiguous.
//
// Layout: x (and residual) [..., hidden], any float dtype; a non-contiguous x is copied once to a
// contiguous one. weight (and bias) [hidden], read as F32.
#pragma once

#include "core/tensor.h"

namespace hfport {

struct RmsNormOptions {
  Tensor residual;           // optional, x's shape and dtype
  bool add_unit_offset = false;
  Tensor out;                // optional preallocated contiguous output (x's dtype and shape)
};

struct RmsNormResult {
  Tensor out;                // normalised, x's dtype (F64 from the reference)
  Tensor residual_sum;       // x + residual, x's dtype; undefined without a residual
};

// Runs on the device of its tensors (all on one: DeviceError otherwise), the CPU or CUDA.
RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps,
                       const RmsNormOptions& options = {});
// Float64 reference: s = x + residual (rounded to x's dtype, like the kernel), then the formula in
// float64, without the intermediate rounding. Outputs F64 (residual_sum in x's dtype).
RmsNormResult rms_norm_reference(const Tensor& x, const Tensor& weight, double eps,
                                 const RmsNormOptions& options = {});

// The argument checks (dtypes, shapes; not the device) that rms_norm and layer_norm run on either
// device: the CPU path and the CUDA side (ops/cuda/norm.cpp) share them.
void check_rms_norm_arguments(const Tensor& x, const Tensor& weight, const RmsNormOptions& options);
void check_layer_norm_arguments(const Tensor& x, const Tensor& weight, const Tensor& bias);

// weight and bias are optional (undefined: 1 and 0).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& out = Tensor());
Tensor layer_norm_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

// A pre-norm block's residual add fused with the layer_norm that follows it, on the CPU, F32:
// x = x * scale + residual (a layer scale, DINOv2's; x + residual when scale is undefined), in
// place, then returns layer_norm(x, weight, bias, eps). One pass over the rows instead of an add
// and a norm. x must be a contiguous F32 host tensor (it is written); residual has x's shape and
// dtype; scale is [hidden] or undefined. The twin is add_inplace followed by layer_norm.
Tensor add_into_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& scale,
                           const Tensor& weight, const Tensor& bias, double eps);

struct GatedRmsNormOptions {
  Tensor gate;             // optional, x's shape and dtype; without it a grouped rms_norm
  int64_t group_size = 0;  // 0: the whole row; else it must divide hidden
  Tensor out;              // optional preallocated contiguous output (x's dtype and shape)
};

// Runs on the device of its tensors, the CPU or CUDA. Precision as rms_norm's: the
// gate product and the statistics in F32, the normalised value rounded to x's dtype before the
// weight multiplies it (as transformers' MambaRMSNormGated casts it back).
Tensor rms_norm_gated(const Tensor& x, const Tensor& weight, double eps,
                      const GatedRmsNormOptions& options = {});
// Float64 from the exact inputs, without the intermediate rounding; F64 output.
Tensor rms_norm_gated_reference(const Tensor& x, const Tensor& weight, double eps,
                                const GatedRmsNormOptions& options = {});
// The argument checks; returns the group size in effect (hidden when options.group_size is 0).
int64_t check_rms_norm_gated_arguments(const Tensor& x, const Tensor& weight,
                                       const GatedRmsNormOptions& options);

}  // namespace hfport
