// bf16 -> f32 cast.
//
// A bf16 is the top half of an f32, so the cast is a 16-bit shift: pure bandwidth. Each thread
// handles four elements (one 8-byte load, one 16-byte store) when both pointers are aligned for
// it, which keeps loads and stores full-width; a scalar loop covers the tail and unaligned input.
// Reference: hfport::cast on the host (core/cast.h), which the tests compare against.
#include "core/cuda/cast.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/cuda_call.h"

namespace hfport::cuda {

namespace {

__device__ __forceinline__ float bf16_bits_to_f32(uint32_t bits) { return __uint_as_float(bits << 16); }

__global__ void cast_bf16_to_f32_vec4(CastBf16ToF32Params p) {
  const int64_t groups = p.n / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint2 packed = reinterpret_cast<const uint2*>(p.src)[g];
    float4 out;
    out.x = bf16_bits_to_f32(packed.x & 0xFFFFu);
    out.y = bf16_bits_to_f32(packed.x >> 16);
    out.z = bf16_bits_to_f32(packed.y & 0xFFFFu);
    out.w = bf16_bits_to_f32(packed.y >> 16);
    reinterpret_cast<float4*>(p.dst)[g] = out;
  }
}

__global__ void cast_bf16_to_f32_scalar(CastBf16ToF32Params p, int64_t start) {
  for (int64_t i = start + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    p.dst[i] = bf16_bits_to_f32(p.src[i]);
  }
}

}  // namespace

void cast_bf16_to_f32(const CastBf16ToF32Params& params, void* stream_ptr) {
  if (params.n <= 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  constexpr int kThreads = 256;
  constexpr int64_t kMaxBlocks = 65535;
  const bool aligned = reinterpret_cast<uintptr_t>(params.src) % 8 == 0 &&
                       reinterpret_cast<uintptr_t>(params.dst) % 16 == 0;
  int64_t scalar_start = 0;
  if (aligned && params.n >= 4) {
    const int64_t groups = params.n / 4;
    const int64_t blocks = std::min<int64_t>((groups + kThreads - 1) / kThreads, kMaxBlocks);
    cast_bf16_to_f32_vec4<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(params);
    HFPORT_CORE_CUDA(cudaGetLastError());
    scalar_start = groups * 4;
  }
  const int64_t rest = params.n - scalar_start;
  if (rest > 0) {
    const int64_t blocks = std::min<int64_t>((rest + kThreads - 1) / kThreads, kMaxBlocks);
    cast_bf16_to_f32_scalar<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(params,
                                                                                   scalar_start);
    HFPORT_CORE_CUDA(cudaGetLastError());
  }
}

}  // namespace hfport::cuda
