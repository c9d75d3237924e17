// The warp-level instructions of the flash attention kernel (flash_attention.cu) as inline PTX:
// cp.async (global -> shared, 16 bytes, zero fill), ldmatrix.x4 (plain and .trans), mma.sync
// m16n8k16 with f32 accumulators for f16 and bf16, ex2.approx, and the f32 -> 16-bit pair
// packing whose low half is the lower column. Device code only. Which element lands in which
// register is documented, and tested on the host, in flash_attention_fragments.h.
//
// All of these need sm_80 or newer (bf16 mma, cp.async); the build's architectures are 80 and
// 90a, and flash_attention_supports() turns older devices away. On an older target the bodies
// compile to a trap rather than to a silent wrong answer.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace hfport::cuda::flash {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define HFPORT_FLASH_SM80 1
#else
#define HFPORT_FLASH_SM80 0
#endif

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies 16 bytes from global `src` to shared `dst`, or writes 16 zero bytes when !valid (then
// nothing is read: the source size is 0, and `src` need only be some valid address).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
#if HFPORT_FLASH_SM80
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)),
               "l"(src), "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if HFPORT_FLASH_SM80
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until every cp.async this thread issued has landed (other threads' copies need a
// __syncthreads after it).
__device__ __forceinline__ void cp_async_wait_all() {
#if HFPORT_FLASH_SM80
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row_address) {
#if HFPORT_FLASH_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row_address))
               : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_address) {
#if HFPORT_FLASH_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row_address))
               : "memory");
#else
  __trap();
#endif
}

// d += a b for one m16n8k16 tile; T is the 16-bit operand type (__half or __nv_bfloat16).
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1);

template <>
__device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                            uint32_t b0, uint32_t b1) {
#if HFPORT_FLASH_SM80
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

template <>
__device__ __forceinline__ void mma_m16n8k16<__half>(float (&d)[4], const uint32_t (&a)[4],
                                                     uint32_t b0, uint32_t b1) {
#if HFPORT_FLASH_SM80
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

// 2^x. ex2.approx.ftz: relative error ~2^-22 and 2^-inf = +0, which the online softmax relies
// on for masked scores; results below 2^-126 flush to zero, far under what a probability that
// is summed with at least one 1 (the row maximum) can contribute.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two f32 values as one register of 16-bit elements, `low` in bits 0-15 (the lower column of a
// fragment), rounded to nearest even.
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float low, float high);

template <>
__device__ __forceinline__ uint32_t pack_pair<__nv_bfloat16>(float low, float high) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(low, high);  // .x = low
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <>
__device__ __forceinline__ uint32_t pack_pair<__half>(float low, float high) {
  const __half2 v = __floats2half2_rn(low, high);  // .x = low
  return *reinterpret_cast<const uint32_t*>(&v);
}

}  // namespace hfport::cuda::flash
