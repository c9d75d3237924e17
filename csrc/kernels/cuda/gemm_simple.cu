// The fallback GEMM (gemm_simple.h). Each thread owns one y[r, o] and walks `in` once in f32;
// threads of a block take consecutive o for one r, so x[r, :] is a broadcast read and the
// weight's rows are read along their own stride. No tiling: this runs only where cuBLASLt has no
// algorithm, which are small or oddly shaped problems.
#include "kernels/cuda/gemm_simple.h"

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

template <typename T>
__global__ void gemm_simple_kernel(SimpleGemmParams p) {
  const auto* x = static_cast<const T*>(p.x);
  const auto* w = static_cast<const T*>(p.weight);
  auto* y = static_cast<T*>(p.y);
  const int64_t total = p.rows * p.out;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / p.out, o = i % p.out;
    float sum = p.accumulate ? load_float(y, i) : 0.0f;
    for (int64_t k = 0; k < p.in; ++k) {
      sum = fmaf(load_float(x, r * p.in + k), load_float(w, o * p.w_out_stride + k * p.w_in_stride),
                 sum);
    }
    store_float(y, i, sum);
  }
}

}  // namespace

void gemm_simple(const SimpleGemmParams& p, void* stream) {
  require_float_dtype("linear (fallback GEMM)", "x", p.dtype);
  if (p.rows == 0 || p.out == 0) return;
  constexpr int kThreads = 256;
  auto s = static_cast<cudaStream_t>(stream);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    gemm_simple_kernel<T><<<grid_for(p.rows * p.out, kThreads), kThreads, 0, s>>>(p);
  });
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace hfport::cuda
