#include "core/cast.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "core/error.h"
#include "core/parallel.h"

namespace hfport {

namespace {

constexpr int64_t kCastGrain = 1 << 18;  // elements per thread at least: ~1 MB of f32 output
// From this many elements a call's f32 output (8 MB) is past a typical L2 share of the cache,
// and streaming stores beat ordinary ones; below it the output may still be read from cache.
constexpr int64_t kStreamingElements = 1 << 21;

// Element i of a source buffer. Sources are read through memcpy because a safetensors data
// buffer need not be aligned for its dtype (nothing makes the header length a multiple of 8); a
// typed load from such an address is undefined, and the compiler emits the same plain (unaligned)
// load for the memcpy.
template <typename T>
T load(const void* src, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const std::byte*>(src) + i * static_cast<int64_t>(sizeof(T)),
              sizeof(T));
  return v;
}

// bf16 is the top half of an f32: widening is a zero-extend and a shift, written on integers so
// the compiler turns it into packed instructions (punpck/pslld) without a float round trip.
void widen_bf16_to_f32(const void* src, uint32_t* dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<uint32_t>(load<uint16_t>(src, i)) << 16;
}

#if defined(__x86_64__)
// The same with AVX2 and streaming stores, for outputs larger than the caches: an ordinary store
// first reads the destination line in (a write-allocate), so it moves three bytes per byte
// written; a streaming store writes the line whole. Measured: 46% -> 85% of memcpy bandwidth.
__attribute__((target("avx2"))) void widen_bf16_to_f32_stream(const void* src, uint32_t* dst,
                                                               int64_t count) {
  const auto* bytes = static_cast<const std::byte*>(src);
  int64_t i = 0;
  for (; i < count && reinterpret_cast<uintptr_t>(dst + i) % 32 != 0; ++i) {
    dst[i] = static_cast<uint32_t>(load<uint16_t>(src, i)) << 16;
  }
  for (; i + 16 <= count; i += 16) {
    const __m256i halves = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes + 2 * i));
    const __m256i low = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(halves)), 16);
    const __m256i high =
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(halves, 1)), 16);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), low);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 8), high);
  }
  _mm_sfence();  // streaming stores are weakly ordered: publish them before the threads join
  for (; i < count; ++i) dst[i] = static_cast<uint32_t>(load<uint16_t>(src, i)) << 16;
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// f16 -> f32 through the F16C instruction (every x86-64 CPU since 2012); chosen at run time so
// the library still runs, more slowly, on a CPU without it.
__attribute__((target("avx,f16c"))) void widen_f16_to_f32_f16c(const void* src, float* dst,
                                                                 int64_t count) {
  const auto* bytes = static_cast<const std::byte*>(src);
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + 2 * i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(half));
  }
  for (; i < count; ++i) dst[i] = f16_to_f32(load<uint16_t>(src, i));
}

// F16C is read from CPUID leaf 1 directly: clang before 16 rejects "f16c" in
// __builtin_cpu_supports (Debian 12's clang 14, which the fuzz build uses). "avx" also checks that
// the OS saves the YMM registers, so it stays with the builtin.
bool cpu_has_f16c() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0 &&
           __builtin_cpu_supports("avx");
  }();
  return has;
}
#endif

// Narrowing to F16 or BF16 must round once. A source with more than 24 significant bits (F64,
// 32- and 64-bit integers) first goes to f32 rounded to odd (truncate, then set the last bit if
// anything was dropped), and then to nearest even: f32 keeps at least two bits more than either
// half format, so the pair rounds exactly as one direct rounding would (Boldo and Melquiond,
// "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd").
// Rounding to nearest twice instead turns values just above a half-format tie into the tie,
// which then rounds to even: 1 + 2^-11 + 2^-40 would become f16 1.0 instead of 1 + 2^-10.
float to_f32_round_odd(float v) { return v; }

float to_f32_round_odd(double v) {
  const float nearest = static_cast<float>(v);
  if (std::isnan(v) || static_cast<double>(nearest) == v) return nearest;
  uint32_t bits = std::bit_cast<uint32_t>(nearest);
  // Inexact: the answer is whichever of `nearest` and its neighbour towards v is odd. An
  // overflow to infinity steps back to FLT_MAX, which the half formats round on to infinity.
  if ((bits & 1u) == 0) {
    bits = std::fabs(static_cast<double>(nearest)) > std::fabs(v) ? bits - 1 : bits + 1;
  }
  return std::bit_cast<float>(bits);
}

float to_f32_round_odd(uint64_t v) {
  const int width = std::bit_width(v);
  if (width <= 24) return static_cast<float>(v);
  const int dropped = width - 24;
  const uint64_t sticky = (v & ((uint64_t{1} << dropped) - 1)) != 0 ? 1 : 0;
  return std::ldexp(static_cast<float>((v >> dropped) | sticky), dropped);  // exact
}

float to_f32_round_odd(int64_t v) {
  const uint64_t magnitude =
      v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  const float rounded = to_f32_round_odd(magnitude);
  return v < 0 ? -rounded : rounded;
}

template <typename Dst, typename Convert>
void widen_each(const void* src, DType src_dtype, Dst* dst, int64_t count, Convert convert) {
  // Fast paths for the cases checkpoints need; everything else goes through load_as_f64.
  if (src_dtype == DType::BF16) {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(bf16_to_f32(load<uint16_t>(src, i)));
  } else if (src_dtype == DType::F16) {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(f16_to_f32(load<uint16_t>(src, i)));
  } else if (src_dtype == DType::F32) {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(load<float>(src, i));
  } else if (src_dtype == DType::F64) {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(load<double>(src, i));
  } else if (src_dtype == DType::I64) {  // as integers: a double cannot hold every one exactly
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(load<int64_t>(src, i));
  } else if (src_dtype == DType::U64) {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(load<uint64_t>(src, i));
  } else {
    for (int64_t i = 0; i < count; ++i) dst[i] = convert(load_as_f64(src, src_dtype, i));
  }
}

}  // namespace

void cast_contiguous(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count) {
  if (dst_dtype == DType::F32 && src_dtype == DType::BF16) {
#if defined(__x86_64__)
    if (count >= kStreamingElements && cpu_has_avx2()) {
      widen_bf16_to_f32_stream(src, static_cast<uint32_t*>(dst), count);
      return;
    }
#endif
    widen_bf16_to_f32(src, static_cast<uint32_t*>(dst), count);
    return;
  }
#if defined(__x86_64__)
  if (dst_dtype == DType::F32 && src_dtype == DType::F16 && cpu_has_f16c()) {
    widen_f16_to_f32_f16c(src, static_cast<float*>(dst), count);
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
      widen_each(src, src_dtype, static_cast<uint16_t*>(dst), count,
                 [](auto v) { return f32_to_f16(to_f32_round_odd(v)); });
      return;
    case DType::BF16:
      widen_each(src, src_dtype, static_cast<uint16_t*>(dst), count,
                 [](auto v) { return f32_to_bf16(to_f32_round_odd(v)); });
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
    // Fresh output pages are the larger cost of a big cast; each thread maps in its own part.
    prefault_for_write(dst + begin * out_item, static_cast<size_t>(end - begin) * out_item);
    cast_contiguous(in + begin * in_item, input.dtype(), dst + begin * out_item, target,
                    end - begin);
  });
  return out;
}

}  // namespace hfport
