// bf16 -> f32 widening on the GPU: the cast the loader runs after uploading a bf16 checkpoint
// that is wanted in float32. Host-callable; includes no CUDA header so C++ callers need none.
#pragma once

#include <cstdint>

namespace hfport::cuda {

struct CastBf16ToF32Params {
  const uint16_t* src;  // device pointer, n bf16 values
  float* dst;           // device pointer, n floats; must not overlap src
  int64_t n;
};

// Launches on `stream` (a cudaStream_t; nullptr is the default stream) and checks the launch.
void cast_bf16_to_f32(const CastBf16ToF32Params& params, void* stream);

}  // namespace hfport::cuda
