// The CPU RoPE rotation; see rope.h and kernels/rope_params.h.
#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "core/cast.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

constexpr int64_t kMinElementsPerThread = int64_t{1} << 16;

float load_f32(const void* base, DType dtype, int64_t index) {
  uint16_t bits;
  if (dtype == DType::F32) {
    float value;
    std::memcpy(&value, static_cast<const float*>(base) + index, sizeof(value));
    return value;
  }
  std::memcpy(&bits, static_cast<const uint16_t*>(base) + index, sizeof(bits));
  return dtype == DType::F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

// The rotation of one head row in f32 (x and out may be the same row); cloned for AVX-512 and
// AVX2 (float_math.h), where the loader picks the best the CPU has.
HFPORT_SIMD_CLONES
void rotate_row(const float* x, float* out, const float* c, const float* s, int64_t rotary,
                bool interleaved) {
  const int64_t half = rotary / 2;
  if (interleaved) {
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[2 * i];
      const float b = x[2 * i + 1];
      out[2 * i] = a * c[i] - b * s[i];
      out[2 * i + 1] = b * c[i] + a * s[i];
    }
  } else {
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[i];
      const float b = x[i + half];
      out[i] = a * c[i] - b * s[i];
      out[i + half] = b * c[i] + a * s[i];
    }
  }
}

void rope_rows(const RopeParams& p, int64_t begin, int64_t end) {
  const int64_t half = p.rotary_dim / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
  std::vector<float> row(static_cast<size_t>(p.head_dim));
  const size_t item = dtype_size(p.dtype);
  for (int64_t bs = begin; bs < end; ++bs) {
    const int64_t b = bs / p.seq;
    const int64_t pos = bs % p.seq;
    const int64_t table_at = b * p.table_stride[0] + pos * p.table_stride[1];
    for (int64_t i = 0; i < half; ++i) {
      c[i] = load_f32(p.cos, p.table_dtype, table_at + i);
      s[i] = load_f32(p.sin, p.table_dtype, table_at + i);
    }
    for (int64_t h = 0; h < p.heads; ++h) {
      const int64_t x_at = b * p.x_stride[0] + h * p.x_stride[1] + pos * p.x_stride[2];
      const int64_t out_at = b * p.out_stride[0] + h * p.out_stride[1] + pos * p.out_stride[2];
      const std::byte* src = static_cast<const std::byte*>(p.x) + x_at * static_cast<int64_t>(item);
      std::byte* dst = static_cast<std::byte*>(p.out) + out_at * static_cast<int64_t>(item);
      if (p.dtype == DType::F32) {
        const auto* xf = reinterpret_cast<const float*>(src);
        auto* of = reinterpret_cast<float*>(dst);
        rotate_row(xf, of, c.data(), s.data(), p.rotary_dim, p.interleaved);
        if (of != xf && p.rotary_dim < p.head_dim) {
          std::memcpy(of + p.rotary_dim, xf + p.rotary_dim,
                      static_cast<size_t>(p.head_dim - p.rotary_dim) * sizeof(float));
        }
        continue;
      }
      cast_contiguous(src, p.dtype, row.data(), DType::F32, p.rotary_dim);
      rotate_row(row.data(), row.data(), c.data(), s.data(), p.rotary_dim, p.interleaved);
      auto* o16 = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < p.rotary_dim; ++i) {
        o16[i] = p.dtype == DType::F16 ? f32_to_f16(row[i]) : f32_to_bf16(row[i]);
      }
      if (dst != src && p.rotary_dim < p.head_dim) {
        std::memcpy(o16 + p.rotary_dim, reinterpret_cast<const uint16_t*>(src) + p.rotary_dim,
                    static_cast<size_t>(p.head_dim - p.rotary_dim) * item);
      }
    }
  }
}

}  // namespace

void rope_cpu(const RopeParams& p) {
  const int64_t rows = p.batch * p.seq;
  const int64_t per_row = std::max<int64_t>(1, p.heads * p.head_dim);
  parallel_for(rows, std::max<int64_t>(1, kMinElementsPerThread / per_row),
               [&](int64_t begin, int64_t end) { rope_rows(p, begin, end); });
}

}  // namespace hfport
