// RMSNorm and LayerNorm over the last dimension on the GPU: the ops of kernels/cpu/norm.h, on
// device pointers. Host-callable; includes no CUDA header.
//
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * w          (add_unit_offset: * (1 + w), Gemma)
//               with a residual, s = x + residual is written to residual_sum (rounded to x's
//               dtype, as the model's own add) and s is what gets normalised
//   layer_norm: y = (x - mean) / sqrt(var + eps) * w + b   (biased variance; w, b optional)
//
// Rows are contiguous, [rows, cols]. Statistics and products are f32. For F16/BF16 without the
// unit offset, x * inv is rounded to x's dtype before the weight multiplies it (LlamaRMSNorm);
// with it, one rounding at the end (GemmaRMSNorm): the same rounding points as the CPU kernel.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/cpu/norm.h"

namespace hfport::cuda {

struct NormParams {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::F32;        // of x, residual, out, residual_sum: F32, F16 or BF16
  const void* x = nullptr;         // device, [rows, cols] contiguous
  const void* residual = nullptr;  // device, [rows, cols] contiguous, or null (rms_norm only)
  const float* weight = nullptr;   // device, [cols] F32; required for rms_norm, optional for layer_norm
  const float* bias = nullptr;     // device, [cols] F32 or null (layer_norm only)
  float eps = 1e-6f;
  bool add_unit_offset = false;    // rms_norm only
  void* out = nullptr;             // device, [rows, cols] contiguous; may be x
  void* residual_sum = nullptr;    // device, [rows, cols]; required with residual; may be x or residual
};

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch.
// Throw ArgumentError for a dtype other than F32/F16/BF16 or a missing required pointer.
void rms_norm(const NormParams& params, void* stream);
void layer_norm(const NormParams& params, void* stream);

// The Tensor-level ops behind hfport::rms_norm / layer_norm (kernels/cpu/norm.h) for tensors on a
// CUDA device (defined in norm_op.cpp): the same checks and results, on hfport's work stream. x
// and residual are read in place when contiguous (else copied once); weight and bias go to
// contiguous F32. `out` may be x itself; the residual sum is a fresh tensor.
RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps,
                       const RmsNormOptions& options);
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& out);

}  // namespace hfport::cuda
