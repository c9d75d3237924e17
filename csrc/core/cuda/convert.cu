// Strided gather + dtype conversion. One thread per output element, grid-stride; the source offset
// is rebuilt from the linear output index by peeling dims from the last (the cost of a few integer
// divisions is hidden behind the memory traffic). A contiguous source of the same dtype never gets
// here: callers use a plain copy for that. The same-dtype strided case is a pure gather. The one
// cast that dominates loads, a contiguous bf16 -> f32 widening (a bf16 checkpoint wanted in f32),
// goes to the vectorised kernel of cast.h instead.
#include "core/cuda/convert.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda/cast.h"
#include "core/cuda/float_element.cuh"
#include "core/cuda_call.h"
#include "core/error.h"

namespace hfport::cuda {

namespace {

__device__ __forceinline__ double load_wide(const void* p, DType dtype, int64_t i) {
  if (dtype == DType::F64) return static_cast<const double*>(p)[i];
  return static_cast<double>(load_any(p, dtype, i));
}

__device__ __forceinline__ void store_wide(void* p, DType dtype, int64_t i, double v) {
  switch (dtype) {
    case DType::F64: static_cast<double*>(p)[i] = v; break;
    case DType::F32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    // Rounding f64 -> f32 -> f16 could round twice; __double2half / __double2bfloat16 round once.
    case DType::F16: static_cast<__half*>(p)[i] = __double2half(v); break;
    default: static_cast<__nv_bfloat16*>(p)[i] = __double2bfloat16(v); break;
  }
}

__global__ void convert_kernel(ConvertParams p, int64_t numel, bool wide) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, offset = 0, dst_offset = p.dst_strided ? 0 : i;
    for (int d = p.ndim - 1; d >= 0; --d) {
      const int64_t size = p.sizes[d];
      const int64_t index = rest % size;
      offset += index * p.src_strides[d];
      if (p.dst_strided) dst_offset += index * p.dst_strides[d];
      rest /= size;
    }
    if (wide) {
      store_wide(p.dst, p.dst_dtype, dst_offset, load_wide(p.src, p.src_dtype, offset));
    } else {
      store_any(p.dst, p.dst_dtype, dst_offset, load_any(p.src, p.src_dtype, offset));
    }
  }
}

}  // namespace

bool convert_supports(DType dtype) { return is_float_dtype(dtype) || dtype == DType::F64; }

void convert(const ConvertParams& params, void* stream) {
  for (DType dtype : {params.src_dtype, params.dst_dtype}) {
    if (!convert_supports(dtype)) {
      throw ArgumentError("convert (CUDA): dtype must be F32, F16, BF16 or F64, got " +
                          std::string(dtype_name(dtype)));
    }
  }
  if (params.ndim < 0 || params.ndim > kMaxConvertDims) {
    throw ArgumentError("convert (CUDA): at most " + std::to_string(kMaxConvertDims) +
                        " dimensions, got " + std::to_string(params.ndim));
  }
  int64_t numel = 1;
  for (int d = 0; d < params.ndim; ++d) numel *= params.sizes[d];
  if (numel == 0) return;
  bool src_contiguous = true;
  int64_t expected = 1;  // the row-major stride of dim d
  for (int d = params.ndim - 1; d >= 0; --d) {
    if (params.sizes[d] != 1 && params.src_strides[d] != expected) src_contiguous = false;
    expected *= params.sizes[d];
  }
  if (src_contiguous && !params.dst_strided && params.src_dtype == DType::BF16 &&
      params.dst_dtype == DType::F32) {
    cast_bf16_to_f32({static_cast<const uint16_t*>(params.src), static_cast<float*>(params.dst), numel},
                     stream);
    return;
  }
  const bool wide = params.src_dtype == DType::F64 || params.dst_dtype == DType::F64;
  constexpr int kThreads = 256;
  convert_kernel<<<grid_for(numel, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      params, numel, wide);
  HFPORT_CORE_CUDA(cudaGetLastError());
}

}  // namespace hfport::cuda
