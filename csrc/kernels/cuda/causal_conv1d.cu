// Causal depthwise conv1d and its update on the GPU; see causal_conv1d.h. The CPU twin is
// kernels/cpu/causal_conv1d.cpp.
//
// The convolution: one thread per output (b, d, t), in a flat grid-stride loop with t fastest, so
// a warp reads a contiguous run of x when x's sequence stride is 1. Each thread reads its `width`
// inputs itself (width is 4 in Mamba); neighbours share them through L1, which is enough for a
// first version. A shared-memory tile per channel would remove the re-reads.
//
// The update: one thread per channel (b, d), taking the steps in order; the channel's state and
// its output columns belong to that thread alone. The state dtype is a run-time switch (uniform
// over the grid), x's a template argument: three instantiations per kernel.
#include "kernels/cuda/causal_conv1d.h"

#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void causal_conv1d_kernel(CausalConv1dParams p) {
  const int64_t total = p.batch * p.dim * p.seqlen;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i % p.seqlen;
    const int64_t channel = i / p.seqlen;
    const int64_t d = channel % p.dim;
    const int64_t b = channel / p.dim;
    const int64_t x_base = b * p.x_batch_stride + d * p.x_dim_stride;
    const float* w = p.weight + d * p.width;
    float acc = p.bias ? p.bias[d] : 0.0f;
    for (int64_t k = 0; k < p.width; ++k) {
      const int64_t src = t - (p.width - 1) + k;
      if (src >= 0) acc += w[k] * load_float(x, x_base + src * p.x_seq_stride);
    }
    if (p.silu) acc = silu_f32(acc);
    store_float(out, i, acc);  // out is contiguous [batch, dim, L]: element i
  }
}

template <typename T>
__global__ void causal_conv1d_update_kernel(CausalConv1dUpdateParams p) {
  const int64_t channels = p.batch * p.dim;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = c % p.dim;
    const int64_t b = c / p.dim;
    const int64_t st = b * p.state_batch_stride + d * p.state_dim_stride;
    const int64_t ss = p.state_seq_stride;
    const float* w = p.weight + d * p.width;
    for (int64_t t = 0; t < p.seqlen; ++t) {
      const float xv =
          load_float(x, b * p.x_batch_stride + d * p.x_dim_stride + t * p.x_seq_stride);
      // The window is the last width - 1 state columns, then x_t.
      float acc = p.bias ? p.bias[d] : 0.0f;
      for (int64_t k = 0; k < p.width - 1; ++k) {
        acc += w[k] * load_any(p.conv_state, p.state_dtype,
                               st + (p.state_len - (p.width - 1) + k) * ss);
      }
      acc += w[p.width - 1] * xv;
      if (p.silu) acc = silu_f32(acc);
      store_float(out, c * p.seqlen + t, acc);
      if (p.state_len > 0) {
        for (int64_t j = 0; j + 1 < p.state_len; ++j) {
          store_any(p.conv_state, p.state_dtype, st + j * ss,
                    load_any(p.conv_state, p.state_dtype, st + (j + 1) * ss));
        }
        store_any(p.conv_state, p.state_dtype, st + (p.state_len - 1) * ss, xv);
      }
    }
  }
}

void require_width(const char* op, int64_t width) {
  if (width < 1) {
    throw ArgumentError(std::string(op) + " (CUDA): weight must have width >= 1, got " +
                        std::to_string(width));
  }
}

}  // namespace

void causal_conv1d(const CausalConv1dParams& p, void* stream_ptr) {
  require_float_dtype("causal_conv1d", "x", p.dtype);
  require_width("causal_conv1d", p.width);
  const int64_t total = p.batch * p.dim * p.seqlen;
  if (total <= 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    causal_conv1d_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

void causal_conv1d_update(const CausalConv1dUpdateParams& p, void* stream_ptr) {
  require_float_dtype("causal_conv1d_update", "x", p.dtype);
  require_float_dtype("causal_conv1d_update", "conv_state", p.state_dtype);
  require_width("causal_conv1d_update", p.width);
  if (p.state_len < p.width - 1) {
    throw ArgumentError("causal_conv1d_update (CUDA): conv_state must keep S >= width - 1 = " +
                        std::to_string(p.width - 1) + " columns, got S = " +
                        std::to_string(p.state_len));
  }
  const int64_t channels = p.batch * p.dim;
  if (channels <= 0 || p.seqlen <= 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    causal_conv1d_update_kernel<T><<<grid_for(channels, kThreads), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
