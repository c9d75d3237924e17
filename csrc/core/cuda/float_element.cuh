// How device code reads and writes the three floating element types, and how a launcher picks the
// kernel instantiation for a dtype. Device code only; included by .cu files, never by a host
// header. Core's device cast (core/cuda/convert.cu) and every kernel (kernels/cuda, through
// kernels/cuda/float_math.cuh) use it.
//
// Kernels compute in float32 whatever the storage type, like the CPU kernels
// (kernels/cpu/float_element.h): `load` widens exactly, `store` rounds to nearest even. The
// storage type of the big tensors (x, u, q, ...) is a template argument, so each kernel is built
// for f32, f16 and bf16 and no more; small or per-step operands whose dtype may differ from it
// (cos/sin tables, A/B/C/D, conv and SSM states) are read through `load_any` / written through
// `store_any`, a switch on a dtype that is uniform across the grid, so it costs a predictable
// branch and no further instantiations.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <utility>

#include "core/dtype.h"

namespace hfport::cuda {

template <typename T>
struct FloatElement;

template <>
struct FloatElement<float> {
  static __device__ __forceinline__ float load(float v) { return v; }
  static __device__ __forceinline__ float store(float v) { return v; }
};

template <>
struct FloatElement<__half> {
  static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};

template <>
struct FloatElement<__nv_bfloat16> {
  static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

template <typename T>
__device__ __forceinline__ float load_float(const T* p, int64_t i) {
  return FloatElement<T>::load(p[i]);
}

template <typename T>
__device__ __forceinline__ void store_float(T* p, int64_t i, float v) {
  p[i] = FloatElement<T>::store(v);
}

// Element i of a buffer whose dtype (F32, F16 or BF16; the launcher has checked) is known only at
// run time.
__device__ __forceinline__ float load_any(const void* p, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::F16: return __half2float(static_cast<const __half*>(p)[i]);
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_any(void* p, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::F16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    case DType::BF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[i] = v; break;
  }
}

inline bool is_float_dtype(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<T>{}) with T the device storage type of `dtype` (checked by the caller).
template <typename Fn>
void dispatch_float_type(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F16: std::forward<Fn>(fn)(TypeTag<__half>{}); break;
    case DType::BF16: std::forward<Fn>(fn)(TypeTag<__nv_bfloat16>{}); break;
    default: std::forward<Fn>(fn)(TypeTag<float>{}); break;
  }
}

// Blocks for a grid-stride loop over `count` items: enough to fill the device, never more than
// the 1-D grid limit the kernels here rely on.
inline unsigned grid_for(int64_t count, int threads) {
  constexpr int64_t kMaxBlocks = 65535;
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace hfport::cuda
