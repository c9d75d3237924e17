// Elementwise activations on the GPU; see activation.h. The CPU twin is kernels/cpu/activation.cpp.
//
// A grid-stride loop, one element per thread per iteration. The activation is a run-time switch
// that is uniform over the grid (so it costs a predictable branch, not an instantiation); the
// storage type is a template argument: three instantiations in all. Scalar loads: a memory-bound
// op like this one would gain from 16-byte accesses, a later step.
#include "kernels/cuda/activation.h"

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

template <typename T>
__global__ void activation_kernel(ActivationParams p) {
  const T* x = static_cast<const T*>(p.x);
  const T* up = static_cast<const T*>(p.up);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = load_float(x, i);
    float y;
    switch (p.activation) {
      case Activation::GeluErf: y = gelu_erf_f32(v); break;
      case Activation::GeluTanh: y = gelu_tanh_f32(v); break;
      case Activation::Swiglu: y = silu_f32(v) * load_float(up, i); break;
      default: y = silu_f32(v); break;
    }
    store_float(out, i, y);
  }
}

}  // namespace

void activation(const ActivationParams& p, void* stream_ptr) {
  require_float_dtype("activation", "x", p.dtype);
  if (p.n <= 0) return;
  if (p.activation == Activation::Swiglu && !p.up) {
    throw ArgumentError("swiglu (CUDA): up must be a device pointer, got null");
  }
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  constexpr int kThreads = 256;
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    activation_kernel<T><<<grid_for(p.n, kThreads), kThreads, 0, stream>>>(p);
    HFPORT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace hfport::cuda
