// What the CUDA kernels share beyond reading and writing their element types
// (core/cuda/float_element.cuh, included here): the float32 functions torch defines (silu,
// softplus, both gelus), written as the CPU kernels write theirs (kernels/cpu/float_math.h), and
// the dtype check every launcher runs. Device code only; included by the .cu files, never by a
// host header.
#pragma once

#include <string>

#include "core/cuda/float_element.cuh"
#include "core/dtype.h"
#include "core/error.h"

namespace hfport::cuda {

// torch's definitions, in float32 with CUDA's accurate (non-fast-math) functions.
__device__ __forceinline__ float silu_f32(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float softplus_f32(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float gelu_erf_f32(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}
__device__ __forceinline__ float gelu_tanh_f32(float x) {
  const float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + tanhf(inner));
}

// Throws ArgumentError unless `dtype` is F32, F16 or BF16: "rms_norm (CUDA): x must be F32, F16 or
// BF16, got I32".
inline void require_float_dtype(const char* op, const char* arg, DType dtype) {
  if (!is_float_dtype(dtype)) {
    throw ArgumentError(std::string(op) + " (CUDA): " + arg + " must be F32, F16 or BF16, got " +
                        std::string(dtype_name(dtype)));
  }
}

}  // namespace hfport::cuda
