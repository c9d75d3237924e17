// Selective scan and its one-step update on the GPU; see selective_scan.h. The CPU twin is
// kernels/cpu/selective_scan.cpp.
//
// One warp per channel (b, d). Lane l owns the states n = l, l + 32, ..., at most kPerLane =
// kMaxScanState / 32 of them, in registers: the loops over them are unrolled with compile-time
// indices and a guard n < N, so the arrays never spill to local memory. Time is walked in order;
// at each step every lane updates its states and adds its share of C . h, a butterfly of warp
// shuffles sums the shares, and lane 0 finishes y (D skip, z gate) and writes it. The per-step
// scalars (u, delta, z) are the same address for the whole warp, so each is one broadcast load.
//
// This is the first, correct version, and it is sequential over L: its parallelism is
// batch x dim warps, and with Mamba's N = 16 half of each warp idles. The issue's target, a chunked
// parallel scan over L (and several channels per warp for small N), is a later step.
//
// The update is the same warp-per-channel layout for a single step, with the state read from and
// written back to memory in its own dtype.
#include "kernels/cuda/selective_scan.h"

#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_element.cuh"

namespace hfport::cuda {

namespace {

constexpr int kPerLane = static_cast<int>(kMaxScanState / 32);
constexpr int kThreads = 128;  // four channels per block
constexpr int kWarpsPerBlock = kThreads / 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) selective_scan_kernel(SelectiveScanParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t channels = p.batch * p.dim;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  const T* u = static_cast<const T*>(p.u);
  const T* delta = static_cast<const T*>(p.delta);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  const bool time_varying = p.n_groups > 0;
  // c is the same for every lane of a warp, so the shuffles below always see the full warp.
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
       c < channels; c += warps) {
    const int64_t b = c / p.dim;
    const int64_t d = c % p.dim;
    const int64_t g = time_varying ? d / (p.dim / p.n_groups) : 0;
    float a[kPerLane], h[kPerLane], b_fixed[kPerLane], c_fixed[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int64_t n = lane + 32 * j;
      const bool live = n < p.dstate;
      h[j] = 0.0f;
      a[j] = live ? load_any(p.A, p.A_dtype, d * p.dstate + n) : 0.0f;
      b_fixed[j] = live && !time_varying
                       ? load_any(p.B, p.B_dtype, d * p.B_dim_stride + n * p.B_state_stride)
                       : 0.0f;
      c_fixed[j] = live && !time_varying
                       ? load_any(p.C, p.C_dtype, d * p.C_dim_stride + n * p.C_state_stride)
                       : 0.0f;
    }
    const float d_skip = p.D ? load_any(p.D, p.D_dtype, d) : 0.0f;
    const float bias = p.delta_bias ? load_any(p.delta_bias, p.delta_bias_dtype, d) : 0.0f;
    const int64_t u_base = b * p.u_batch_stride + d * p.u_dim_stride;
    const int64_t delta_base = b * p.delta_batch_stride + d * p.delta_dim_stride;
    const int64_t z_base = b * p.z_batch_stride + d * p.z_dim_stride;
    const int64_t b_base = b * p.B_batch_stride + g * p.B_group_stride;
    const int64_t c_base = b * p.C_batch_stride + g * p.C_group_stride;
    for (int64_t t = 0; t < p.seqlen; ++t) {
      const float uv = load_float(u, u_base + t * p.u_seq_stride);
      float dt = load_float(delta, delta_base + t * p.delta_seq_stride) + bias;
      if (p.delta_softplus) dt = softplus_f32(dt);
      const float du = dt * uv;
      float y = 0.0f;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const int64_t n = lane + 32 * j;
        if (n < p.dstate) {
          float bn = b_fixed[j], cn = c_fixed[j];
          if (time_varying) {
            bn = load_any(p.B, p.B_dtype, b_base + n * p.B_state_stride + t * p.B_seq_stride);
            cn = load_any(p.C, p.C_dtype, c_base + n * p.C_state_stride + t * p.C_seq_stride);
          }
          h[j] = expf(dt * a[j]) * h[j] + du * bn;
          y += h[j] * cn;
        }
      }
      y = warp_sum(y);
      if (lane == 0) {
        y += d_skip * uv;
        if (z) y *= silu_f32(load_float(z, z_base + t * p.z_seq_stride));
        store_float(out, c * p.seqlen + t, y);
      }
    }
    if (p.last_state) {
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const int64_t n = lane + 32 * j;
        if (n < p.dstate) p.last_state[c * p.dstate + n] = h[j];
      }
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    selective_state_update_kernel(SelectiveStateUpdateParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t channels = p.batch * p.dim;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  const T* x = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
       c < channels; c += warps) {
    const int64_t b = c / p.dim;
    const int64_t d = c % p.dim;
    const int64_t g = d / (p.dim / p.n_groups);
    const float xv = load_float(x, b * p.x_batch_stride + d * p.x_dim_stride);
    float dt = load_float(dt_in, b * p.dt_batch_stride + d * p.dt_dim_stride);
    if (p.dt_bias) dt += load_any(p.dt_bias, p.dt_bias_dtype, d);
    if (p.dt_softplus) dt = softplus_f32(dt);
    const int64_t state_base = b * p.state_batch_stride + d * p.state_dim_stride;
    const int64_t b_base = b * p.B_batch_stride + g * p.B_group_stride;
    const int64_t c_base = b * p.C_batch_stride + g * p.C_group_stride;
    float y = 0.0f;
    for (int64_t n = lane; n < p.dstate; n += 32) {
      const int64_t at = state_base + n * p.state_state_stride;
      const float bn = load_any(p.B, p.B_dtype, b_base + n * p.B_state_stride);
      const float cn = load_any(p.C, p.C_dtype, c_base + n * p.C_state_stride);
      const float an = load_any(p.A, p.A_dtype, d * p.dstate + n);
      const float hn = expf(dt * an) * load_any(p.state, p.state_dtype, at) + dt * bn * xv;
      store_any(p.state, p.state_dtype, at, hn);
      y += hn * cn;
    }
    y = warp_sum(y);
    if (lane == 0) {
      if (p.D) y += load_any(p.D, p.D_dtype, d) * xv;
      if (z) y *= silu_f32(load_float(z, b * p.z_batch_stride + d * p.z_dim_stride));
      store_float(out, c, y);
    }
  }
}

void check_state_and_groups(const char* op, int64_t dstate, int64_t dim, int64_t n_groups,
                            bool groups_optional) {
  if (dstate < 1 || dstate > kMaxScanState) {
    throw ArgumentError(std::string(op) + " (CUDA): the state size N must be in [1, " +
                        std::to_string(kMaxScanState) + "], got " + std::to_string(dstate));
  }
  const bool ok = (groups_optional && n_groups == 0) || (n_groups >= 1 && dim % n_groups == 0);
  if (!ok) {
    throw ArgumentError(std::string(op) + " (CUDA): the group count G = " +
                        std::to_string(n_groups) + " must divide dim = " + std::to_string(dim));
  }
}

// One warp per channel, four per block; the kernels loop when the grid cannot hold them all.
unsigned blocks_for_channels(int64_t channels) {
  return grid_for(channels, kWarpsPerBlock);
}

}  // namespace

void selective_scan(const SelectiveScanParams& p, void* stream_ptr) {
  const char* op = "selective_scan";
  require_float_dtype(op, "u", p.dtype);
  require_float_dtype(op, "A", p.A_dtype);
  require_float_dtype(op, "B", p.B_dtype);
  require_float_dtype(op, "C", p.C_dtype);
  if (p.D) require_float_dtype(op, "D", p.D_dtype);
  if (p.delta_bias) require_float_dtype(op, "delta_bias", p.delta_bias_dtype);
  check_state_and_groups(op, p.dstate, p.dim, p.n_groups, true);
  const int64_t channels = p.batch * p.dim;
  if (channels <= 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (p.seqlen <= 0) {
    // No step taken: the last state is the zero start.
    if (p.last_state) {
      HFPORT_CUDA_CHECK(cudaMemsetAsync(p.last_state, 0,
                                        static_cast<size_t>(channels * p.dstate) * sizeof(float),
                                        stream));
    }
    return;
  }
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    selective_scan_kernel<T><<<blocks_for_channels(channels), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

void selective_state_update(const SelectiveStateUpdateParams& p, void* stream_ptr) {
  const char* op = "selective_state_update";
  require_float_dtype(op, "x", p.dtype);
  require_float_dtype(op, "state", p.state_dtype);
  require_float_dtype(op, "A", p.A_dtype);
  require_float_dtype(op, "B", p.B_dtype);
  require_float_dtype(op, "C", p.C_dtype);
  if (p.D) require_float_dtype(op, "D", p.D_dtype);
  if (p.dt_bias) require_float_dtype(op, "dt_bias", p.dt_bias_dtype);
  check_state_and_groups(op, p.dstate, p.dim, p.n_groups, false);
  const int64_t channels = p.batch * p.dim;
  if (channels <= 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    selective_state_update_kernel<T><<<blocks_for_channels(channels), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
