#include "core/cast.h"

#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/error.h"
#include "core/parallel.h"

namespace hfport {

namespace {

constexpr int64_t kCastGrain = 1 << 18;  // elements per thread at least: ~1 MB of f32 output

// bf16 is the top half of an f32: widening is a zero-extend and a shift, written on integers so
// the compiler turns it into packed instructions (punpck/pslld) without a float round trip.
void widen_bf16_to_f32(const uint16_t* src, uint32_t* dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<uint32_t>(src[i]) << 16;
}

#if defined(__x86_64__)
// f16 -> f32 through the F16C instruction (every x86-64 CPU since 2012); chosen at run time so
// the library still runs, more slowly, on a CPU without it.
__attribute__((target("avx,f16c"))) void widen_f16_to_f32_f16c(const uint16_t* src, float* dst,
                                                                 int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(half));
  }
  for (; i < count; ++i) dst[i] = f16_to_f32(src[i]);
}

bool cpu_has_f16c() {
  static const bool has = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return has;
}
#endif

template <typename Dst, typename Convert>
void widen_each(const void* src, DType src_dtype, Dst* dst, int64_t count, Convert convert) {
  // Fast paths for the cases checkpoints need; everything else goes through load_as_f64.
  if (src_dtype == DType::BF16) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(bf16_to_f32(s[i]));
  } else if (src_dtype == DType::F16) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(f16_to_f32(s[i]));
  } else if (src_dtype == DType::F32) {
    const auto* s = static_cast<const float*>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(s[i]);
  } else if (src_dtype == DType::F64) {
    const auto* s = static_cast<const double*>(src);
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(s[i]);
  } else {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(load_as_f64(src, src_dtype, i));
  }
}

}  // namespace

void cast_contiguous(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count) {
  if (dst_dtype == DType::F32 && src_dtype == DType::BF16) {
    widen_bf16_to_f32(static_cast<const uint16_t*>(src), static_cast<uint32_t*>(dst), count);
    return;
  }
#if defined(__x86_64__)
  if (dst_dtype == DType::F32 && src_dtype == DType::F16 && cpu_has_f16c()) {
    widen_f16_to_f32_f16c(static_cast<const uint16_t*>(src), static_cast<float*>(dst), count);
    return;
  }
#endif
  switch (dst_dtype) {
    case DType::F32:
      widen_each(src, src_dtype, static_cast<float*>(dst), count,
                 [](auto v) { return static_cast<float>(v); });
      return;
    case DType::F64:
      widen_each(src, src_dtype, static_cast<double*>(dst), count,
                 [](auto v) { return static_cast<double>(v); });
      return;
    case DType::F16:
      if (src_dtype == DType::F64) {  // round once, not twice through f32
        widen_each(src, src_dtype, static_cast<uint16_t*>(dst), count, [](double v) {
          return f32_to_f16(static_cast<float>(v));
        });
        return;
      }
      widen_each(src, src_dtype, static_cast<uint16_t*>(dst), count,
                 [](auto v) { return f32_to_f16(static_cast<float>(v)); });
      return;
    case DType::BF16:
      widen_each(src, src_dtype, static_cast<uint16_t*>(dst), count,
                 [](auto v) { return f32_to_bf16(static_cast<float>(v)); });
      return;
    default:
      throw DTypeConversionError("cannot cast " + std::string(dtype_name(src_dtype)) + " to " +
                                 std::string(dtype_name(dst_dtype)) +
                                 ": hfport casts to F32, F64, F16 or BF16");
  }
}

Tensor cast(const Tensor& src, DType target) {
  if (src.dtype() == target) return src;
  if (!dtype_is_floating(target) || target == DType::F8_E4M3 || target == DType::F8_E5M2) {
    throw DTypeConversionError("cannot cast " + std::string(dtype_name(src.dtype())) + " to " +
                               std::string(dtype_name(target)) +
                               ": hfport casts to F32, F64, F16 or BF16");
  }
  if (src.device().type != DeviceType::CPU) {
    throw DeviceError("hfport::cast runs on the host; the tensor is on CUDA");
  }
  const Tensor input = src.contiguous();
  Tensor out = Tensor::empty(target, src.shape());
  const size_t in_item = dtype_size(input.dtype());
  const size_t out_item = dtype_size(target);
  const std::byte* in = input.data();
  std::byte* dst = out.data();
  parallel_for(input.numel(), kCastGrain, [&](int64_t begin, int64_t end) {
    cast_contiguous(in + begin * in_item, input.dtype(), dst + begin * out_item, target,
                    end - begin);
  });
  return out;
}

}  // namespace hfport
