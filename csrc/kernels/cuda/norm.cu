// RMSNorm, LayerNorm and Mamba-2's gated grouped RMSNorm on the GPU; see norm.h for the contract,
// kernels/cpu/norm.cpp for the CPU twin.
//
// One block per row (grid-stride over rows when there are more than the grid holds). Each thread
// walks the row with stride blockDim.x, so the whole block reads one row coalesced; the sum (of
// squares) is reduced in f32 through warp shuffles and a 32-slot shared array. rms_norm reads the
// row twice (statistics, then the scaled write), layer_norm three times (mean, centred variance as
// the CPU and torch compute it, write); the second and third reads hit L2 for rows of ordinary
// size. A thread reads and writes the same indices in every pass, and the reduction's barriers
// separate the passes, which is why out may be x and residual_sum may be x or residual.
//
// rms_norm_gated: the same one block per row; for each group of group_size columns in turn, a
// pass forming v = x * silu(gate) and summing v^2 (reduced as above), then a pass forming v again
// and writing round(v * inv) * w, the rounding to x's dtype as the CPU and transformers do. v is
// recomputed rather than kept, so the kernel has no limit on the row length; the same
// thread-to-index mapping in both passes makes out == x safe. The gated kernel is compiled but has
// never run on a GPU (no device was lent to the session that wrote it).
//
// Correctness first: scalar loads; rows are not kept in registers or shared memory between
// passes. The bandwidth target (85% of copy) is a later step.
#include "kernels/cuda/norm.h"

#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kThreads = 256;

// The sum of `v` over the block, returned to every thread. `shared` holds 32 floats; the block
// size is a multiple of 32. Ends with a barrier, so `shared` may be reused at once.
__device__ float block_sum(float v, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int warps = blockDim.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += shared[w];
  __syncthreads();
  return total;
}

template <typename T>
__global__ void rms_norm_kernel(NormParams p) {
  __shared__ float shared[32];
  const T* x = static_cast<const T*>(p.x);
  const T* residual = static_cast<const T*>(p.residual);
  T* out = static_cast<T*>(p.out);
  T* sum_out = static_cast<T*>(p.residual_sum);
  const int64_t n = p.cols;
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const int64_t base = r * n;
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      float v;
      if (residual) {
        store_float(sum_out, base + i, load_float(x, base + i) + load_float(residual, base + i));
        v = load_float(sum_out, base + i);  // the sum as stored, like the model's own add
      } else {
        v = load_float(x, base + i);
      }
      squares += v * v;
    }
    const float inv = 1.0f / sqrtf(block_sum(squares, shared) / static_cast<float>(n) + p.eps);
    const T* src = residual ? sum_out : x;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = load_float(src, base + i);
      const float w = p.weight[i];
      float y;
      if (p.add_unit_offset) {
        y = v * inv * (1.0f + w);
      } else {
        // LlamaRMSNorm: the normalised value is rounded to the input dtype, then weighted (for
        // f32 the round trip is the identity).
        y = FloatElement<T>::load(FloatElement<T>::store(v * inv)) * w;
      }
      store_float(out, base + i, y);
    }
  }
}

template <typename T>
__global__ void layer_norm_kernel(NormParams p) {
  __shared__ float shared[32];
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const int64_t n = p.cols;
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const int64_t base = r * n;
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += load_float(x, base + i);
    const float mean = block_sum(sum, shared) / static_cast<float>(n);
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float c = load_float(x, base + i) - mean;
      squares += c * c;
    }
    const float rstd = 1.0f / sqrtf(block_sum(squares, shared) / static_cast<float>(n) + p.eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      float y = (load_float(x, base + i) - mean) * rstd;
      if (p.weight) y *= p.weight[i];
      if (p.bias) y += p.bias[i];
      store_float(out, base + i, y);
    }
  }
}

template <typename T>
__global__ void rms_norm_gated_kernel(GatedRmsNormParams p) {
  __shared__ float shared[32];
  const T* x = static_cast<const T*>(p.x);
  const T* gate = static_cast<const T*>(p.gate);
  T* out = static_cast<T*>(p.out);
  const int64_t n = p.cols;
  const int64_t group = p.group_size;
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const int64_t base = r * n;
    for (int64_t g0 = 0; g0 < n; g0 += group) {
      float squares = 0.0f;
      for (int64_t i = g0 + threadIdx.x; i < g0 + group; i += blockDim.x) {
        float v = load_float(x, base + i);
        if (gate) v *= silu_f32(load_float(gate, base + i));
        squares += v * v;
      }
      const float inv =
          1.0f / sqrtf(block_sum(squares, shared) / static_cast<float>(group) + p.eps);
      for (int64_t i = g0 + threadIdx.x; i < g0 + group; i += blockDim.x) {
        float v = load_float(x, base + i);
        if (gate) v *= silu_f32(load_float(gate, base + i));
        // As transformers: the normalised value in x's dtype, then the weight.
        store_float(out, base + i,
                    FloatElement<T>::load(FloatElement<T>::store(v * inv)) * p.weight[i]);
      }
    }
  }
}

void require(bool ok, const char* op, const char* what) {
  if (!ok) throw ArgumentError(std::string(op) + " (CUDA): " + what);
}

// Rows per launch are capped by the 1-D grid limit; the kernels loop over the rest.
unsigned row_blocks(int64_t rows) {
  constexpr int64_t kMaxBlocks = 65535;
  return static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks);
}

// A block no wider than the row (rounded up to a warp), so short rows leave few threads idle.
int threads_for(int64_t cols) {
  const int64_t warps = (cols + 31) / 32;
  return static_cast<int>(warps >= kThreads / 32 ? kThreads : warps * 32);
}

}  // namespace

void rms_norm(const NormParams& p, void* stream_ptr) {
  require_float_dtype("rms_norm", "x", p.dtype);
  if (p.rows <= 0 || p.cols <= 0) return;
  require(p.x && p.out && p.weight, "rms_norm", "x, weight and out must be device pointers");
  require(!p.residual || p.residual_sum, "rms_norm",
          "a residual needs residual_sum, the buffer the sum x + residual is written to");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rms_norm_kernel<T><<<row_blocks(p.rows), threads_for(p.cols), 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

void layer_norm(const NormParams& p, void* stream_ptr) {
  require_float_dtype("layer_norm", "x", p.dtype);
  if (p.rows <= 0 || p.cols <= 0) return;
  require(p.x && p.out, "layer_norm", "x and out must be device pointers");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    layer_norm_kernel<T><<<row_blocks(p.rows), threads_for(p.cols), 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

void rms_norm_gated(const GatedRmsNormParams& p, void* stream_ptr) {
  require_float_dtype("rms_norm_gated", "x", p.dtype);
  if (p.rows <= 0 || p.cols <= 0) return;
  require(p.x && p.out && p.weight, "rms_norm_gated", "x, weight and out must be device pointers");
  require(p.group_size >= 1 && p.cols % p.group_size == 0, "rms_norm_gated",
          "group_size must be >= 1 and divide cols");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rms_norm_gated_kernel<T><<<row_blocks(p.rows), threads_for(p.group_size), 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
