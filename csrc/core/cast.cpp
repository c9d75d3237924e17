#include "core/cast.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "core/parallel.h"

namespace hfport {

namespace {

constexpr int64_t kCastGrain = 1 << 18;  // elements per thread at least: ~1 MB of f32 output

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
