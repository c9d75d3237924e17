// Mamba-2's SSD scan and its one-step update on the GPU; see ssd_scan.h for the contract,
// kernels/cpu/ssd_scan.cpp for the CPU twin.
//
// The scan is the sequential recurrence, not the chunked SSD form: one warp per (batch, head,
// head_dim element p), grid-stride over them, walking t = 0 .. L-1 and applying
//   S_t[p, :] = exp(dt_t A) S_{t-1}[p, :] + (dt_t B_t[:]) x_t[p]
//   y_t[p]    = S_t[p, :] . C_t + D x_t[p]
// in float32, lane l owning the states n = l, l + 32, ...; y's dot product is a butterfly of
// shuffles. The state row lives in final_states (global memory, [batch, H, P, N]): each step
// reads and writes it, coalesced across the lanes, and it stays in L1/L2 for any N, so the kernel
// has no limit on d_state and needs no shared memory. dt, x and D are the same for the whole warp
// (broadcast loads); B_t and C_t ([batch, G, L, N] packed F32) are read once per (b, h, p) step,
// so B and C are read P times per head from cache.
//
// What it costs: B x H x P warps each running L dependent steps of N / 32 fused multiply-adds per
// lane plus one shuffle reduction, so its time grows with L and it uses none of the tensor cores;
// for Mamba-2-130M shapes (H 24, P 64, N 128) that is 1536 warps per batch row, enough to occupy
// an H100 but each paying L steps of latency. The chunked form (the intra-chunk C B^T matrix
// products on tensor cores, the state carried only between chunks, as the CPU kernel and
// mamba_ssm do) is the next step; this one is the plainest form that is correct by construction,
// and chunk_size changes nothing here (on the CPU it changes only the rounding).
//
// Precision: everything f32, exp(dt A) formed per step with expf (the CPU's chunked form takes
// exp of float64 running sums instead; the two agree to float32 rounding over ordinary lengths).
// dt: + dt_bias, softplus (torch's threshold 20) when asked, clamp (NaN passes), as the CPU.
//
// The update is the same warp per (batch, head, p) for one step, the state read and written in
// its own dtype through its strides (load_any / store_any, so no extra instantiation), y formed
// from the f32 new state before it is rounded, as the CPU kernel does.
//
// Instantiations: 3 dtypes per kernel. Status: compiled, never run on a GPU (no device was lent
// to the session that wrote it).
#include "kernels/cuda/ssd_scan.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kWarps = 4;  // per block
constexpr int kThreads = kWarps * 32;

// torch.clamp: NaN passes through (both comparisons are false).
__device__ __forceinline__ float clamp_dt(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

__device__ __forceinline__ float prepared_dt(float raw, const float* bias, int64_t h, bool softplus,
                                             float lo, float hi) {
  float v = raw + (bias ? bias[h] : 0.0f);
  if (softplus) v = softplus_f32(v);
  return clamp_dt(v, lo, hi);
}

// The sum of v over the warp, in every lane.
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The first warp of this thread and the warp stride of the grid-stride loop.
__device__ __forceinline__ int64_t first_warp() {
  return static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
}
__device__ __forceinline__ int64_t warp_stride() {
  return static_cast<int64_t>(gridDim.x) * kWarps;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) ssd_scan_kernel(SsdScanParams p) {
  const T* x_in = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  T* out = static_cast<T*>(p.out);
  const int lane = threadIdx.x % 32;
  const int64_t n_state = p.dstate;
  const int64_t per_group = p.heads / p.n_groups;
  const int64_t items = p.batch * p.heads * p.head_dim;
  // Every lane of a warp takes the same items, so the shuffles see all 32 lanes.
  for (int64_t item = first_warp(); item < items; item += warp_stride()) {
    const int64_t j = item % p.head_dim;
    const int64_t h = (item / p.head_dim) % p.heads;
    const int64_t b = item / (p.head_dim * p.heads);
    const int64_t g = h / per_group;
    float* st = p.final_states + item * n_state;  // [b, h, j, :], item = (b H + h) P + j
    for (int64_t n = lane; n < n_state; n += 32) {
      st[n] = p.initial_states ? p.initial_states[item * n_state + n] : 0.0f;
    }
    const float a = p.A[h];
    const float d_skip = p.D ? p.D[h] : 0.0f;
    const float* b_seq = p.B + (b * p.n_groups + g) * p.seqlen * n_state;
    const float* c_seq = p.C + (b * p.n_groups + g) * p.seqlen * n_state;
    const T* x_row = x_in + b * p.x_batch_stride + h * p.x_head_stride + j * p.x_dim_stride;
    const T* dt_row = dt_in + b * p.dt_batch_stride + h * p.dt_head_stride;
    for (int64_t t = 0; t < p.seqlen; ++t) {
      const float dt = prepared_dt(load_float(dt_row, t * p.dt_seq_stride), p.dt_bias, h,
                                   p.dt_softplus, p.dt_min, p.dt_max);
      const float decay = expf(dt * a);
      const float xv = load_float(x_row, t * p.x_seq_stride);
      const float* bt = b_seq + t * n_state;
      const float* ct = c_seq + t * n_state;
      float acc = 0.0f;
      for (int64_t n = lane; n < n_state; n += 32) {
        const float next = st[n] * decay + (dt * bt[n]) * xv;
        st[n] = next;
        acc += next * ct[n];
      }
      const float y = warp_sum(acc) + d_skip * xv;
      if (lane == 0) {
        store_float(out, ((b * p.seqlen + t) * p.heads + h) * p.head_dim + j, y);
      }
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) ssd_update_kernel(SsdStateUpdateParams p) {
  const T* x_in = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  T* out = static_cast<T*>(p.out);
  const int lane = threadIdx.x % 32;
  const int64_t n_state = p.dstate;
  const int64_t per_group = p.heads / p.n_groups;
  const int64_t items = p.batch * p.heads * p.head_dim;
  for (int64_t item = first_warp(); item < items; item += warp_stride()) {
    const int64_t j = item % p.head_dim;
    const int64_t h = (item / p.head_dim) % p.heads;
    const int64_t b = item / (p.head_dim * p.heads);
    const int64_t g = h / per_group;
    const float dt = prepared_dt(load_float(dt_in, b * p.dt_batch_stride + h * p.dt_head_stride),
                                 p.dt_bias, h, p.dt_softplus, p.dt_min, p.dt_max);
    const float decay = expf(dt * p.A[h]);
    const float xv =
        load_float(x_in, b * p.x_batch_stride + h * p.x_head_stride + j * p.x_dim_stride);
    const float* bn = p.B + (b * p.n_groups + g) * n_state;
    const float* cn = p.C + (b * p.n_groups + g) * n_state;
    const int64_t row = b * p.state_batch_stride + h * p.state_head_stride + j * p.state_dim_stride;
    float acc = 0.0f;
    for (int64_t n = lane; n < n_state; n += 32) {
      const int64_t at = row + n * p.state_state_stride;
      const float next = load_any(p.state, p.state_dtype, at) * decay + (dt * bn[n]) * xv;
      store_any(p.state, p.state_dtype, at, next);
      acc += next * cn[n];
    }
    const float y = warp_sum(acc) + (p.D ? p.D[h] : 0.0f) * xv;
    if (lane == 0) store_float(out, (b * p.heads + h) * p.head_dim + j, y);
  }
}

void require(bool ok, const char* op, const char* what) {
  if (!ok) throw ArgumentError(std::string(op) + " (CUDA): " + what);
}

}  // namespace

void ssd_scan(const SsdScanParams& p, void* stream_ptr) {
  require_float_dtype("ssd_scan", "x", p.dtype);
  const int64_t items = p.batch * p.heads * p.head_dim;
  if (items <= 0) return;
  require(p.n_groups >= 1 && p.heads % p.n_groups == 0, "ssd_scan",
          "n_groups must be >= 1 and divide the head count");
  require(p.final_states != nullptr, "ssd_scan",
          "final_states must be a device buffer (the kernel carries the state in it)");
  require(p.dstate == 0 || (p.B && p.C), "ssd_scan", "B and C must be device pointers");
  require(p.seqlen == 0 || (p.x && p.dt && p.A && p.out), "ssd_scan",
          "x, dt, A and out must be device pointers");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ssd_scan_kernel<T><<<grid_for(items, kWarps), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

void ssd_state_update(const SsdStateUpdateParams& p, void* stream_ptr) {
  require_float_dtype("ssd_state_update", "x", p.dtype);
  require_float_dtype("ssd_state_update", "state", p.state_dtype);
  const int64_t items = p.batch * p.heads * p.head_dim;
  if (items <= 0) return;
  require(p.n_groups >= 1 && p.heads % p.n_groups == 0, "ssd_state_update",
          "n_groups must be >= 1 and divide the head count");
  require(p.x && p.dt && p.A && p.out && (p.dstate == 0 || (p.state && p.B && p.C)),
          "ssd_state_update", "state, x, dt, A, B, C and out must be device pointers");
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ssd_update_kernel<T><<<grid_for(items, kWarps), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
