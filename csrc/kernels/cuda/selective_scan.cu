// Selective scan and its one-step update on the GPU; see selective_scan.h. The CPU twin is
// kernels/cpu/selective_scan.cpp.
//
// The scan: a chunked parallel scan over the sequence, mamba_ssm's structure. One block per
// channel (b, d) (grid-stride over channels when there are more than the grid holds). The block is
// kThreads threads of kItems consecutive time steps each, so it covers a chunk of kThreads x
// kItems steps at once, and walks the sequence chunk by chunk:
//   - each thread loads its steps of u, delta (and z at the end) into registers through the
//     strides: 16-byte vector loads when the sequence stride is 1 and the address aligned, one
//     element at a time otherwise (any stride, a partial last chunk). It computes dt = delta +
//     delta_bias (softplus, threshold 20, when asked), dt u and starts y at D u;
//   - for each state n in turn (a loop, so registers stay bounded for any N up to kMaxScanState):
//     it loads its steps of B_n and C_n (time varying) or reads the two scalars (time invariant),
//     forms the steps' pairs (a, b) = (exp(dt A_n), dt u B_n), and the block runs the scan of
//     selective_scan_combine.h: thread aggregates, a shuffle scan within each warp, the warps'
//     totals through shared memory, the state carried in from the previous chunk; then each
//     thread walks its own steps and adds C_n h into y. The thread with the chunk's last step
//     leaves h for the next chunk in shared memory (`carry`, one float per state);
//   - y is gated by silu(z) and stored (vector stores when aligned); after the last chunk the
//     carried states are the last state.
// Steps past L get dt = 0 and u = 0: the identity pair, so a partial chunk needs no other case; a
// thread without a valid step skips its arithmetic but still takes part in the shuffles and
// barriers, which every thread of the block reaches the same number of times.
//
// Shared memory and barriers: one __syncthreads per (chunk, state), between the warps writing
// their totals and every thread reading them. The totals are double-buffered by the parity of a
// step counter that runs over chunks and states, and the carry by the parity of the chunk, so a
// buffer is rewritten only after the next barrier, when every thread has read it.
//
// Precision: all arithmetic is f32 (inputs widened exactly); exp(dt A) is exp2f(dt (A log2 e)),
// see kScanLog2e. y sums C_n h over n in order, starting from D u.
//
// Block shapes: 32 x 8 (one warp, one chunk of 256 steps) for L <= 256, else 128 x 16 (chunks of
// 2048 steps, mamba_ssm's long-sequence shape). Instantiations: 3 dtypes x 2 shapes.
//
// The update is one warp per channel (b, d), four per block: lane l owns the states n = l, l + 32,
// ...; the state is read from and written back to memory in its own dtype, and a butterfly of
// shuffles sums C . h.
#include "kernels/cuda/selective_scan.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"
#include "kernels/cuda/selective_scan_combine.h"

namespace hfport::cuda {

namespace {

template <typename T>
constexpr DType kStorageDType = DType::F32;
template <>
constexpr DType kStorageDType<__half> = DType::F16;
template <>
constexpr DType kStorageDType<__nv_bfloat16> = DType::BF16;

// v[i] = element offset + i * stride of `base` for i < count, 0 past it.
template <typename T, int kItems>
__device__ __forceinline__ void load_steps(const T* base, int64_t offset, int64_t stride, int count,
                                           float (&v)[kItems]) {
  constexpr int kPerVector = 16 / static_cast<int>(sizeof(T));
  if constexpr (kItems % kPerVector == 0) {
    if (stride == 1 && count == kItems &&
        reinterpret_cast<uintptr_t>(base + offset) % 16 == 0) {
      const uint4* vectors = reinterpret_cast<const uint4*>(base + offset);
      HFPORT_SCAN_UNROLL
      for (int j = 0; j < kItems / kPerVector; ++j) {
        const uint4 raw = vectors[j];
        T parts[kPerVector];
        memcpy(parts, &raw, sizeof(raw));
        HFPORT_SCAN_UNROLL
        for (int k = 0; k < kPerVector; ++k) {
          v[j * kPerVector + k] = FloatElement<T>::load(parts[k]);
        }
      }
      return;
    }
  }
  HFPORT_SCAN_UNROLL
  for (int i = 0; i < kItems; ++i) v[i] = i < count ? load_float(base, offset + i * stride) : 0.0f;
}

// The same for B or C, whose dtype is known only at run time: the typed path when it is the
// kernel's storage type (the usual case), element by element otherwise.
template <typename T, int kItems>
__device__ __forceinline__ void load_steps_any(const void* base, DType dtype, int64_t offset,
                                               int64_t stride, int count, float (&v)[kItems]) {
  if (dtype == kStorageDType<T>) {
    load_steps<T, kItems>(static_cast<const T*>(base), offset, stride, count, v);
    return;
  }
  HFPORT_SCAN_UNROLL
  for (int i = 0; i < kItems; ++i) {
    v[i] = i < count ? load_any(base, dtype, offset + i * stride) : 0.0f;
  }
}

// Elements offset .. offset + count - 1 of `base` (contiguous) = v[0 .. count - 1].
template <typename T, int kItems>
__device__ __forceinline__ void store_steps(T* base, int64_t offset, int count,
                                            const float (&v)[kItems]) {
  constexpr int kPerVector = 16 / static_cast<int>(sizeof(T));
  if constexpr (kItems % kPerVector == 0) {
    if (count == kItems && reinterpret_cast<uintptr_t>(base + offset) % 16 == 0) {
      uint4* vectors = reinterpret_cast<uint4*>(base + offset);
      HFPORT_SCAN_UNROLL
      for (int j = 0; j < kItems / kPerVector; ++j) {
        T parts[kPerVector];
        HFPORT_SCAN_UNROLL
        for (int k = 0; k < kPerVector; ++k) {
          parts[k] = FloatElement<T>::store(v[j * kPerVector + k]);
        }
        uint4 raw;
        memcpy(&raw, parts, sizeof(raw));
        vectors[j] = raw;
      }
      return;
    }
  }
  HFPORT_SCAN_UNROLL
  for (int i = 0; i < kItems; ++i) {
    if (i < count) store_float(base, offset + i, v[i]);
  }
}

template <typename T, typename Tiling>
__global__ void __launch_bounds__(Tiling::kThreads) selective_scan_kernel(SelectiveScanParams p) {
  constexpr int kThreads = Tiling::kThreads;
  constexpr int kItems = Tiling::kItems;
  __shared__ float carry[2][kMaxScanState];               // [chunk parity][n]
  __shared__ ScanPair warp_totals[2][Tiling::kWarps];     // [step parity][warp]

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % kScanWarpSize;
  const int warp = tid / kScanWarpSize;
  const int dstate = static_cast<int>(p.dstate);
  const int64_t channels = p.batch * p.dim;
  const int64_t chunks = Tiling::chunk_count(p.seqlen);
  const bool time_varying = p.n_groups > 0;
  const T* u = static_cast<const T*>(p.u);
  const T* delta = static_cast<const T*>(p.delta);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);

  // c is the same for the whole block, so every barrier below is reached by every thread.
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const int64_t b = c / p.dim;
    const int64_t d = c % p.dim;
    const int64_t g = time_varying ? d / (p.dim / p.n_groups) : 0;
    const float d_skip = p.D ? load_any(p.D, p.D_dtype, d) : 0.0f;
    const float bias = p.delta_bias ? load_any(p.delta_bias, p.delta_bias_dtype, d) : 0.0f;
    const int64_t u_base = b * p.u_batch_stride + d * p.u_dim_stride;
    const int64_t delta_base = b * p.delta_batch_stride + d * p.delta_dim_stride;
    const int64_t z_base = b * p.z_batch_stride + d * p.z_dim_stride;
    const int64_t b_base =
        time_varying ? b * p.B_batch_stride + g * p.B_group_stride : d * p.B_dim_stride;
    const int64_t c_base =
        time_varying ? b * p.C_batch_stride + g * p.C_group_stride : d * p.C_dim_stride;

    for (int n = tid; n < dstate; n += kThreads) carry[0][n] = 0.0f;
    __syncthreads();

    int step = 0;  // (chunk, state) pairs done: its parity picks the warp_totals buffer
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t chunk_first = k * Tiling::kChunk;
      const int valid = Tiling::valid_steps(p.seqlen, chunk_first);
      const int count = Tiling::thread_steps(valid, tid);
      const int64_t first = chunk_first + Tiling::first_step(tid);
      const int read = static_cast<int>(k & 1);

      float dt[kItems], du[kItems], y[kItems];
      load_steps<T, kItems>(u, u_base + first * p.u_seq_stride, p.u_seq_stride, count, du);
      load_steps<T, kItems>(delta, delta_base + first * p.delta_seq_stride, p.delta_seq_stride,
                            count, dt);
      HFPORT_SCAN_UNROLL
      for (int i = 0; i < kItems; ++i) {
        float v = dt[i] + bias;
        if (p.delta_softplus) v = softplus_f32(v);
        dt[i] = i < count ? v : 0.0f;  // past L: the identity step
        y[i] = d_skip * du[i];
        du[i] *= dt[i];
      }

      for (int n = 0; n < dstate; ++n) {
        const float a_log2e = load_any(p.A, p.A_dtype, d * p.dstate + n) * kScanLog2e;
        float a[kItems], bu[kItems], cn[kItems];
        ScanPair inclusive = scan_identity();
        if (count > 0) {
          if (time_varying) {
            load_steps_any<T, kItems>(p.B, p.B_dtype,
                                      b_base + n * p.B_state_stride + first * p.B_seq_stride,
                                      p.B_seq_stride, count, bu);
            load_steps_any<T, kItems>(p.C, p.C_dtype,
                                      c_base + n * p.C_state_stride + first * p.C_seq_stride,
                                      p.C_seq_stride, count, cn);
          } else {
            const float bv = load_any(p.B, p.B_dtype, b_base + n * p.B_state_stride);
            const float cv = load_any(p.C, p.C_dtype, c_base + n * p.C_state_stride);
            HFPORT_SCAN_UNROLL
            for (int i = 0; i < kItems; ++i) {
              bu[i] = bv;
              cn[i] = cv;
            }
          }
          HFPORT_SCAN_UNROLL
          for (int i = 0; i < kItems; ++i) {
            a[i] = scan_decay(dt[i], a_log2e);
            bu[i] *= du[i];
          }
          inclusive = thread_aggregate<kItems>(a, bu);
        }
        HFPORT_SCAN_UNROLL
        for (int offset = 1; offset < kScanWarpSize; offset *= 2) {
          const ScanPair below{__shfl_up_sync(0xffffffffu, inclusive.a, offset),
                               __shfl_up_sync(0xffffffffu, inclusive.b, offset)};
          inclusive = warp_scan_round(inclusive, below, lane, offset);
        }
        const ScanPair exclusive = lane_exclusive(
            ScanPair{__shfl_up_sync(0xffffffffu, inclusive.a, 1),
                     __shfl_up_sync(0xffffffffu, inclusive.b, 1)},
            lane);
        const int buf = step & 1;
        ++step;
        if (lane == kScanWarpSize - 1) warp_totals[buf][warp] = inclusive;
        __syncthreads();
        if (count > 0) {
          const float h0 = chunk_start_state(carry[read][n], warp_totals[buf], warp, exclusive);
          const float h = scan_thread_items<kItems>(h0, a, bu, cn, y);
          if (tid == Tiling::carry_thread(valid)) carry[read ^ 1][n] = h;
        }
      }

      if (z) {
        float zv[kItems];
        load_steps<T, kItems>(z, z_base + first * p.z_seq_stride, p.z_seq_stride, count, zv);
        HFPORT_SCAN_UNROLL
        for (int i = 0; i < kItems; ++i) y[i] *= silu_f32(zv[i]);
      }
      store_steps<T, kItems>(out, c * p.seqlen + first, count, y);
    }

    __syncthreads();  // the last chunk's carries are written
    if (p.last_state) {
      const int last = static_cast<int>(chunks & 1);
      for (int n = tid; n < dstate; n += kThreads) p.last_state[c * p.dstate + n] = carry[last][n];
    }
    __syncthreads();  // read before the next channel zeroes them
  }
}

constexpr int kUpdateThreads = 128;  // four channels per block
constexpr int kUpdateWarps = kUpdateThreads / kScanWarpSize;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__global__ void __launch_bounds__(kUpdateThreads)
    selective_state_update_kernel(SelectiveStateUpdateParams p) {
  const int lane = threadIdx.x % kScanWarpSize;
  const int64_t channels = p.batch * p.dim;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kUpdateWarps;
  const T* x = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  // c is the same for every lane of a warp, so the shuffles always see the full warp.
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * kUpdateWarps + threadIdx.x / kScanWarpSize;
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
    for (int64_t n = lane; n < p.dstate; n += kScanWarpSize) {
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

template <typename T, typename Tiling>
void launch_scan(const SelectiveScanParams& p, cudaStream_t stream) {
  // One block per channel; the kernel loops when the grid cannot hold them all.
  selective_scan_kernel<T, Tiling>
      <<<grid_for(p.batch * p.dim, 1), Tiling::kThreads, 0, stream>>>(p);
  HFPORT_CUDA_CHECK(cudaGetLastError());
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
    if (p.seqlen <= ScanShort::kChunk) {
      launch_scan<T, ScanShort>(p, stream);
    } else {
      launch_scan<T, ScanLong>(p, stream);
    }
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
    selective_state_update_kernel<T>
        <<<grid_for(channels, kUpdateWarps), kUpdateThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
