// RoPE rotation on the GPU; see rope.h for the contract and kernels/cpu/rope.cpp for the CPU twin.
//
// One thread per rotated pair, plus, when out is not x, one per passed-through feature
// (rotary_dim..head_dim): a flat grid-stride loop over rows x (pairs + passed), rows ordered
// (batch, seq, head) so that neighbouring threads share a table row and, for bshd, read neighbouring
// memory. A thread reads both elements of its pair before writing either, which is what makes
// out == x safe. The table's dtype is switched at run time (uniform over the grid), x's at compile
// time: three instantiations.
//
// Written for correctness first: no vector loads and no table reuse across heads in registers;
// the bandwidth target in BENCHMARKS.md (80% of copy) is a later step.
#include "kernels/cuda/rope.h"

#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

template <typename T>
__global__ void rope_kernel(RopeParams p, int64_t per_row) {
  const int64_t half = p.rotary_dim / 2;
  const int64_t total = p.batch * p.seq * p.heads * per_row;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i % per_row;
    int64_t row = i / per_row;
    const int64_t h = row % p.heads;
    row /= p.heads;
    const int64_t s = row % p.seq;
    const int64_t b = row / p.seq;
    const int64_t x_at = b * p.x_stride[0] + h * p.x_stride[1] + s * p.x_stride[2];
    const int64_t out_at = b * p.out_stride[0] + h * p.out_stride[1] + s * p.out_stride[2];
    if (j < half) {
      const int64_t t_at = b * p.table_stride[0] + s * p.table_stride[1] + j;
      const float c = load_any(p.cos, p.table_dtype, t_at);
      const float sn = load_any(p.sin, p.table_dtype, t_at);
      const int64_t ia = p.interleaved ? 2 * j : j;
      const int64_t ib = p.interleaved ? 2 * j + 1 : j + half;
      const float a = load_float(x, x_at + ia);
      const float bv = load_float(x, x_at + ib);
      store_float(out, out_at + ia, a * c - bv * sn);
      store_float(out, out_at + ib, bv * c + a * sn);
    } else {
      const int64_t d = p.rotary_dim + (j - half);
      out[out_at + d] = x[x_at + d];
    }
  }
}

}  // namespace

void rope(const RopeParams& p, void* stream_ptr) {
  require_float_dtype("rope", "x", p.dtype);
  require_float_dtype("rope", "cos/sin", p.table_dtype);
  if (p.rotary_dim < 2 || p.rotary_dim % 2 != 0 || p.rotary_dim > p.head_dim) {
    throw ArgumentError("rope (CUDA): rotary_dim must be even and in [2, head_dim = " +
                        std::to_string(p.head_dim) + "], got " + std::to_string(p.rotary_dim));
  }
  const int64_t passed = p.out == p.x ? 0 : p.head_dim - p.rotary_dim;
  const int64_t per_row = p.rotary_dim / 2 + passed;
  const int64_t total = p.batch * p.seq * p.heads * per_row;
  if (total <= 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  constexpr int kThreads = 256;
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    rope_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(p, per_row);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
