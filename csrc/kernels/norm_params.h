// The kernels' view of one rms_norm or layer_norm call, the same struct for the CPU kernels
// (kernels/cpu/norm.h) and the CUDA ones (kernels/cuda/norm.h). The entry point (ops/norm.h)
// fills it after every check, with pointers on the device that runs the kernel.
//
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * w          (add_unit_offset: * (1 + w), Gemma)
//               with a residual, s = x + residual is written to residual_sum (rounded to x's
//               dtype, as the model's own add) and s is what gets normalised
//   layer_norm: y = (x - mean) / sqrt(var + eps) * w + b   (biased variance; w, b optional); on
//               the CPU in F32 also with a residual, s = x (* residual_scale) + residual first
//
//   rms_norm_gated (Mamba-2's MambaRMSNormGated, norm after gate): v = x * silu(gate), then each
//               group of group_size columns is normalised on its own, y = v / sqrt(mean(v^2) +
//               eps) * w; transformers' class has one group (group_size = cols), mamba_ssm's
//               RMSNormGated takes d_inner / n_groups
//
// Rows are contiguous, [rows, cols]. Statistics and products are f32. For F16/BF16 without the
// unit offset, x * inv is rounded to x's dtype before the weight multiplies it (LlamaRMSNorm, and
// the gated norm, which transformers writes the same way); with it, one rounding at the end
// (GemmaRMSNorm).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct NormParams {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::F32;        // of x, residual, out, residual_sum: F32, F16 or BF16
  const void* x = nullptr;         // [rows, cols] contiguous
  const void* residual = nullptr;  // [rows, cols] contiguous, or null (rms_norm only)
  const float* weight = nullptr;   // [cols] F32; required for rms_norm, optional for layer_norm
  const float* bias = nullptr;     // [cols] F32 or null (layer_norm only)
  float eps = 1e-6f;
  bool add_unit_offset = false;    // rms_norm only
  void* out = nullptr;             // [rows, cols] contiguous; may be x on CUDA
  // [rows, cols]; required with residual; may be x or residual on CUDA
  void* residual_sum = nullptr;
  // [cols] F32 or null. layer_norm on the CPU, F32 only (ops/norm.h, add_into_layer_norm): with
  // a residual, s = x * residual_scale + residual (a layer scale), written to residual_sum, which
  // may be x there.
  const float* residual_scale = nullptr;
};

struct GatedRmsNormParams {
  int64_t rows = 0, cols = 0;
  int64_t group_size = 0;          // divides cols
  DType dtype = DType::F32;        // of x, gate and out: F32, F16 or BF16
  const void* x = nullptr;         // [rows, cols] contiguous
  const void* gate = nullptr;      // [rows, cols] contiguous, or null (a plain grouped RMSNorm)
  const float* weight = nullptr;   // [cols] F32
  float eps = 1e-6f;
  void* out = nullptr;             // [rows, cols] contiguous
};

}  // namespace hfport
