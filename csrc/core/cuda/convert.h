// Strided gather with a dtype conversion on the GPU: the device side of Tensor::contiguous() and of
// a cast, for the ops and the loader that need a contiguous operand in a given float type.
// Host-callable; includes no CUDA header. It lives in core, below the kernels, because core's own
// upload (core/cuda_upload.h) casts with it on the device.
//
// dst[i] = convert(src[offset(i)]) where i runs over the elements in row-major order of `sizes`
// and offset(i) follows `src_strides` (elements, any sign-free strides, broadcast 0 allowed).
// src and dst dtypes are each F32, F16, BF16 or F64; a conversion goes through float64 when either
// side is F64 and through float32 otherwise, rounding to nearest even once. dst is contiguous, or
// strided when dst_strided is set (a view into a larger tensor: a cache slot, a state column; its
// elements must not alias each other). dst must not overlap src.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport::cuda {

inline constexpr int kMaxConvertDims = 8;

struct ConvertParams {
  int ndim = 0;                              // 0 (a scalar) .. kMaxConvertDims
  int64_t sizes[kMaxConvertDims] = {};
  int64_t src_strides[kMaxConvertDims] = {};  // elements
  DType src_dtype = DType::F32;
  const void* src = nullptr;  // device
  DType dst_dtype = DType::F32;
  void* dst = nullptr;        // device
  bool dst_strided = false;   // false: dst is contiguous and dst_strides is ignored
  int64_t dst_strides[kMaxConvertDims] = {};  // elements
};

// True for the dtypes `convert` takes (F32, F16, BF16, F64).
bool convert_supports(DType dtype);

// Launches on `stream` (a cudaStream_t; nullptr is the legacy default stream) and checks the
// launch. ArgumentError for an unsupported dtype or ndim.
void convert(const ConvertParams& params, void* stream);

}  // namespace hfport::cuda
