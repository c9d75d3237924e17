// The ViT-family encoders' element-wise steps (vision_steps.h). Grid-stride loops, one thread per
// output element: memory bound, one pass, nothing to tile. token_mean gives each (batch, feature)
// pair its own thread, which walks the tokens in order so the float64 sum is the host's.
#include "kernels/cuda/vision_steps.h"

#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int64_t first_index() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__global__ void vision_tokens_kernel(VisionTokensParams p) {
  const int64_t seq = p.prefix + p.count;
  const int64_t total = p.batch * seq * p.hidden;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t c = i % p.hidden, t = (i / p.hidden) % seq, b = i / (p.hidden * seq);
    if (t < p.prefix) {
      p.out[i] = p.prefix_rows[t * p.hidden + c];
      continue;
    }
    const int64_t patch = t - p.prefix;
    const bool masked = p.mask != nullptr && p.mask[b * p.count + patch] != 0;
    const float x = masked ? p.mask_token[c] : p.patches[(b * p.count + patch) * p.hidden + c];
    p.out[i] = p.positions == nullptr ? x : __fadd_rn(x, p.positions[patch * p.hidden + c]);
  }
}

__global__ void scale_add_kernel(ScaleAddParams p) {
  const int64_t total = p.rows * p.cols;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    p.a[i] = __fadd_rn(__fmul_rn(p.a[i], p.scale[i % p.cols]), p.residual[i]);
  }
}

__global__ void token_mean_kernel(TokenMeanParams p) {
  const int64_t total = p.batch * p.hidden;
  const double count = static_cast<double>(p.seq - p.skip);
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t b = i / p.hidden, c = i % p.hidden;
    double sum = 0.0;
    for (int64_t t = p.skip; t < p.seq; ++t) sum += p.x[(b * p.seq + t) * p.hidden + c];
    p.out[b * p.out_row_stride + c] = static_cast<float>(sum / count);
  }
}

__global__ void tanh_kernel(float* x, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) x[i] = tanhf(x[i]);
}

}  // namespace

void vision_tokens(const VisionTokensParams& p, void* stream) {
  if ((p.mask == nullptr) != (p.mask_token == nullptr)) {
    throw ArgumentError("vision_tokens (CUDA): mask and mask_token must be given together");
  }
  const int64_t total = p.batch * (p.prefix + p.count) * p.hidden;
  if (total == 0) return;
  vision_tokens_kernel<<<grid_for(total, kThreads), kThreads, 0,
                         static_cast<cudaStream_t>(stream)>>>(p);
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

void scale_add_inplace(const ScaleAddParams& p, void* stream) {
  if (p.rows * p.cols == 0) return;
  scale_add_kernel<<<grid_for(p.rows * p.cols, kThreads), kThreads, 0,
                     static_cast<cudaStream_t>(stream)>>>(p);
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

void token_mean(const TokenMeanParams& p, void* stream) {
  if (p.skip >= p.seq) {
    throw ArgumentError("token_mean (CUDA): no tokens after the first " + std::to_string(p.skip) +
                        " of " + std::to_string(p.seq));
  }
  if (p.batch * p.hidden == 0) return;
  token_mean_kernel<<<grid_for(p.batch * p.hidden, kThreads), kThreads, 0,
                      static_cast<cudaStream_t>(stream)>>>(p);
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

void tanh_inplace(float* x, int64_t n, void* stream) {
  if (n == 0) return;
  tanh_kernel<<<grid_for(n, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, n);
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace hfport::cuda
