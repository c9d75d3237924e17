// RWKV-4's WKV recurrence on the GPU; see rwkv_wkv.h for the contract, kernels/cpu/rwkv_wkv.cpp
// for the CPU twin.
//
// The plainest correct form: one thread per (batch, channel), grid-stride over them, running the
// max-tracking recurrence over time in float32 exactly as the CPU kernel does, step for step and
// in the same order of operations (the same exp pairing: of exp(a - max(a, b)) and
// exp(b - max(a, b)) the larger argument's is exactly 1). Adjacent threads own adjacent channels,
// so a step's loads of k and v (and the store of y) are coalesced when the channel stride is 1.
// The state (num, den, max) lives in registers for the whole sequence and is read once and
// written once. Each thread does L sequential steps, so the kernel's time is L steps of latency
// whatever the batch: enough parallelism for B x C in the thousands (RWKV's 768+ channels), too
// little for a single short row. That is transformers' own CUDA kernel's shape too.
//
// Precision: all arithmetic f32 with CUDA's accurate expf (the CPU uses its vectorisable exp,
// within an ulp or two). Instantiations: 3 dtypes.
//
// Status: compiled, never run on a GPU (no device was lent to the session that wrote it).
#include "kernels/cuda/rwkv_wkv.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kThreads = 128;

// exp(a - max(a, b)) and exp(b - max(a, b)) with one exponential, as the CPU's exp_pair.
__device__ __forceinline__ void exp_pair(float a, float b, float& ea, float& eb) {
  const float d = a - b;
  const float e = expf(-fabsf(d));
  const bool a_larger = d >= 0.0f;
  ea = a_larger ? 1.0f : e;
  eb = a_larger ? e : 1.0f;
}

template <typename T>
__global__ void wkv_kernel(RwkvWkvParams p) {
  const int64_t total = p.batch * p.channels;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const T* k_in = static_cast<const T*>(p.k);
  const T* v_in = static_cast<const T*>(p.v);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t b = i / p.channels;
    const int64_t c = i % p.channels;
    const float w_neg = -expf(p.w[c]);
    const float u = p.u[c];
    float num = p.num[i], den = p.den[i], mx = p.max[i];
    const T* k_row = k_in + b * p.k_batch_stride + c * p.k_channel_stride;
    const T* v_row = v_in + b * p.v_batch_stride + c * p.v_channel_stride;
    T* o = out + b * p.seqlen * p.channels + c;
    for (int64_t t = 0; t < p.seqlen; ++t) {
      if (p.mask && p.mask[b * p.seqlen + t] == 0) {
        o[t * p.channels] = FloatElement<T>::store(0.0f);
        continue;
      }
      const float kc = load_float(k_row, t * p.k_seq_stride);
      const float vc = load_float(v_row, t * p.v_seq_stride);
      const float bonus = kc + u;
      float e1, e2;
      exp_pair(mx, bonus, e1, e2);  // exp(max - q), exp(k + u - q) for q = max(max, k + u)
      o[t * p.channels] = FloatElement<T>::store((e1 * num + e2 * vc) / (e1 * den + e2));
      const float decayed = mx + w_neg;
      float f1, f2;
      exp_pair(decayed, kc, f1, f2);  // for q' = max(max + w', k)
      num = f1 * num + f2 * vc;
      den = f1 * den + f2;
      mx = decayed < kc ? kc : decayed;  // torch.maximum
    }
    p.num[i] = num;
    p.den[i] = den;
    p.max[i] = mx;
  }
}

}  // namespace

void rwkv_wkv(const RwkvWkvParams& p, void* stream_ptr) {
  require_float_dtype("rwkv_wkv", "k", p.dtype);
  if (p.batch <= 0 || p.seqlen <= 0 || p.channels <= 0) return;
  if (!p.k || !p.v || !p.w || !p.u || !p.num || !p.den || !p.max || !p.out) {
    throw ArgumentError("rwkv_wkv (CUDA): k, v, w, u, the state and out must be device pointers");
  }
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    wkv_kernel<T><<<grid_for(p.batch * p.channels, kThreads), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
