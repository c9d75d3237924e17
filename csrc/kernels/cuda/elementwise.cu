// The models' element-wise steps (elementwise.h). Each is a grid-stride loop over its elements:
// memory bound, one pass, nothing to tile. Embedding and row masking move whole rows as bytes,
// four at a time when the row size and pointers allow it (the common case: hidden sizes are
// multiples of 2 and tensors come from cudaMalloc), else one at a time.
#include "kernels/cuda/elementwise.h"

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kThreads = 256;

template <typename Unit>
__global__ void embedding_kernel(EmbeddingParams p, int64_t units_per_row) {
  const int64_t total = p.count * units_per_row;
  const auto* table = static_cast<const Unit*>(p.table);
  auto* out = static_cast<Unit*>(p.out);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / units_per_row, unit = i % units_per_row;
    out[i] = table[p.ids[row] * units_per_row + unit];
  }
}

template <typename Unit>
__global__ void mask_rows_kernel(MaskRowsParams p, int64_t units_per_row) {
  const int64_t total = p.rows * units_per_row;
  auto* x = static_cast<Unit*>(p.x);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (p.keep[i / units_per_row] == 0) x[i] = Unit{0};
  }
}

template <typename T>
__global__ void add_kernel(AddParams p) {
  auto* a = static_cast<T*>(p.a);
  const auto* b = static_cast<const T*>(p.b);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    store_float(a, i, load_float(a, i) + load_float(b, i));
  }
}

template <typename T>
__global__ void swiglu_halves_kernel(SwigluHalvesParams p) {
  const auto* in = static_cast<const T*>(p.gate_up);
  auto* out = static_cast<T*>(p.out);
  const int64_t total = p.rows * p.width;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / p.width, col = i % p.width;
    const float gate = load_float(in, row * 2 * p.width + col);
    const float up = load_float(in, row * 2 * p.width + p.width + col);
    store_float(out, i, silu_f32(gate) * up);
  }
}

bool aligned4(const void* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; }

}  // namespace

void embedding(const EmbeddingParams& p, void* stream) {
  if (p.count == 0 || p.row_bytes == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.row_bytes % 4 == 0 && aligned4(p.table) && aligned4(p.out)) {
    const int64_t units = p.row_bytes / 4;
    embedding_kernel<uint32_t><<<grid_for(p.count * units, kThreads), kThreads, 0, s>>>(p, units);
  } else {
    embedding_kernel<uint8_t><<<grid_for(p.count * p.row_bytes, kThreads), kThreads, 0, s>>>(
        p, p.row_bytes);
  }
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

void mask_rows(const MaskRowsParams& p, void* stream) {
  if (p.rows == 0 || p.row_bytes == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.row_bytes % 4 == 0 && aligned4(p.x)) {
    const int64_t units = p.row_bytes / 4;
    mask_rows_kernel<uint32_t><<<grid_for(p.rows * units, kThreads), kThreads, 0, s>>>(p, units);
  } else {
    mask_rows_kernel<uint8_t><<<grid_for(p.rows * p.row_bytes, kThreads), kThreads, 0, s>>>(
        p, p.row_bytes);
  }
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

void add_inplace(const AddParams& p, void* stream) {
  require_float_dtype("add_inplace", "a", p.dtype);
  if (p.n == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    add_kernel<T><<<grid_for(p.n, kThreads), kThreads, 0, s>>>(p);
  });
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

void swiglu_halves(const SwigluHalvesParams& p, void* stream) {
  require_float_dtype("swiglu_halves", "gate_up", p.dtype);
  if (p.rows == 0 || p.width == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    swiglu_halves_kernel<T><<<grid_for(p.rows * p.width, kThreads), kThreads, 0, s>>>(p);
  });
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace hfport::cuda
