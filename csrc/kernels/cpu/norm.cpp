// The CPU kernels of rms_norm and layer_norm; see norm.h and kernels/norm_params.h.
#include "kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/storage.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

constexpr int64_t kPartialSums = 16;

HFPORT_SIMD_CLONES
float sum_of_squares(const float* __restrict v, int64_t n) {
  float partial[kPartialSums] = {};
  int64_t i = 0;
  for (; i + kPartialSums <= n; i += kPartialSums) {
    for (int64_t j = 0; j < kPartialSums; ++j) partial[j] += v[i + j] * v[i + j];
  }
  for (; i < n; ++i) partial[0] += v[i] * v[i];
  float total = 0.0f;
  for (int64_t j = 0; j < kPartialSums; ++j) total += partial[j];
  return total;
}

HFPORT_SIMD_CLONES
float sum_of(const float* __restrict v, int64_t n) {
  float partial[kPartialSums] = {};
  int64_t i = 0;
  for (; i + kPartialSums <= n; i += kPartialSums) {
    for (int64_t j = 0; j < kPartialSums; ++j) partial[j] += v[i + j];
  }
  for (; i < n; ++i) partial[0] += v[i];
  float total = 0.0f;
  for (int64_t j = 0; j < kPartialSums; ++j) total += partial[j];
  return total;
}

// F32 rows without a residual: scale straight from x into out.
HFPORT_SIMD_CLONES
void scale_row_f32(const float* __restrict x, const float* __restrict w, float inv, bool unit_offset,
                   int64_t n, float* __restrict out) {
  if (unit_offset) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * (1.0f + w[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * inv) * w[i];
  }
}

// Partial sums per row statistic in the layer norm below: four AVX-512 vectors (eight AVX2 ones),
// enough independent adds to hide their latency, where one vector of 16 left each add waiting on the
// last. Every loop over them is unrolled in full (`#pragma GCC unroll`): GCC 12 otherwise keeps a
// small accumulator array on the stack and stores it on every iteration.
constexpr int64_t kLayerLanes = 64;

// The lanes' total, summed as a tree (halves added lane-wise, so each step is a vector add; a
// serial sum of 64 lanes was a chain of 64 dependent adds per row statistic). Inlined into each SIMD
// clone that calls it.
[[gnu::always_inline]] inline float total_of_lanes(float* acc) {
#pragma GCC unroll 8
  for (int64_t width = kLayerLanes / 2; width >= 1; width /= 2) {
#pragma GCC unroll 32
    for (int64_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  }
  return acc[0];
}

// One F32 row of layer_norm into out: the mean, then the mean of (x - mean)^2 (two passes over a
// row that stays in L1, so the variance has no cancellation, as torch's), then
// (x - mean) * rstd * w + b. The plain form is run_layer's, which F16 and BF16 still take; this is
// the same formula with the sums split into lanes, compiled for each SIMD level.
[[gnu::always_inline]] inline void layer_norm_row_body(const float* __restrict x,
                                                      const float* __restrict w,
                                                      const float* __restrict b, float eps,
                                                      int64_t n, float* __restrict out) {
  float acc[kLayerLanes] = {};
  int64_t i = 0;
  for (; i + kLayerLanes <= n; i += kLayerLanes) {
#pragma GCC unroll 64
    for (int64_t j = 0; j < kLayerLanes; ++j) acc[j] += x[i + j];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += x[i];
  const float mean = (total_of_lanes(acc) + tail) / static_cast<float>(n);
#pragma GCC unroll 64
  for (int64_t j = 0; j < kLayerLanes; ++j) acc[j] = 0.0f;
  for (i = 0; i + kLayerLanes <= n; i += kLayerLanes) {
#pragma GCC unroll 64
    for (int64_t j = 0; j < kLayerLanes; ++j) {
      const float d = x[i + j] - mean;
      acc[j] += d * d;
    }
  }
  tail = 0.0f;
  for (; i < n; ++i) tail += (x[i] - mean) * (x[i] - mean);
  const float var = (total_of_lanes(acc) + tail) / static_cast<float>(n);
  const float rstd = 1.0f / std::sqrt(var + eps);
  if (w != nullptr && b != nullptr) {
    for (i = 0; i < n; ++i) out[i] = (x[i] - mean) * rstd * w[i] + b[i];
  } else if (w != nullptr) {
    for (i = 0; i < n; ++i) out[i] = (x[i] - mean) * rstd * w[i];
  } else if (b != nullptr) {
    for (i = 0; i < n; ++i) out[i] = (x[i] - mean) * rstd + b[i];
  } else {
    for (i = 0; i < n; ++i) out[i] = (x[i] - mean) * rstd;
  }
}

HFPORT_SIMD_CLONES
void layer_norm_row_f32(const float* __restrict x, const float* __restrict w,
                        const float* __restrict b, float eps, int64_t n, float* __restrict out) {
  layer_norm_row_body(x, w, b, eps, n, out);
}

// A pre-norm block's residual step and the norm after it, one row: s = x * scale + residual (x +
// residual without a scale; the product rounded before the add, as the model's two ops) into sum,
// which may be x, then layer_norm(s) while the row is still in L1.
HFPORT_SIMD_CLONES
void add_layer_norm_row_f32(const float* x, const float* __restrict residual,
                            const float* __restrict scale, const float* __restrict w,
                            const float* __restrict b, float eps, int64_t n, float* sum,
                            float* __restrict out) {
  if (scale != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      const float scaled = x[i] * scale[i];
      sum[i] = scaled + residual[i];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) sum[i] = x[i] + residual[i];
  }
  layer_norm_row_body(sum, w, b, eps, n, out);
}

template <typename E>
void run_rms(const NormParams& p) {
  using T = typename E::Stored;
  const T* x = static_cast<const T*>(p.x);
  const T* residual = static_cast<const T*>(p.residual);
  T* out = static_cast<T*>(p.out);
  T* sum_out = static_cast<T*>(p.residual_sum);
  const int64_t n = p.cols;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1));
  parallel_for(p.rows, grain, [&](int64_t begin, int64_t end) {
    // A fresh output's pages fault in one call per thread instead of one fault per 4 KB.
    prefault_for_write(out + begin * n, static_cast<size_t>(end - begin) * n * sizeof(T));
    if (sum_out) prefault_for_write(sum_out + begin * n, static_cast<size_t>(end - begin) * n * sizeof(T));
    std::vector<float> row(n);
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * n;
      T* o = out + r * n;
      const float* v;
      if constexpr (std::is_same_v<E, F32Element>) {
        v = xr;
      } else {
        for (int64_t i = 0; i < n; ++i) row[i] = E::load(xr[i]);
        v = row.data();
      }
      if (residual) {
        const T* rr = residual + r * n;
        T* s = sum_out + r * n;
        for (int64_t i = 0; i < n; ++i) {
          s[i] = E::store(E::load(xr[i]) + E::load(rr[i]));
          row[i] = E::load(s[i]);  // normalise the sum as stored, like the model's own add
        }
        v = row.data();
      }
      const float inv = 1.0f / std::sqrt(sum_of_squares(v, n) / static_cast<float>(n) + p.eps);
      if constexpr (std::is_same_v<E, F32Element>) {
        scale_row_f32(v, p.weight, inv, p.add_unit_offset, n, o);
      } else if (p.add_unit_offset) {
        for (int64_t i = 0; i < n; ++i) o[i] = E::store(v[i] * inv * (1.0f + p.weight[i]));
      } else {
        // LlamaRMSNorm: the normalised value is rounded to the input dtype, then weighted.
        for (int64_t i = 0; i < n; ++i) {
          o[i] = E::store(E::load(E::store(v[i] * inv)) * p.weight[i]);
        }
      }
    }
  });
}

template <typename E>
void run_layer(const NormParams& p) {
  using T = typename E::Stored;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const int64_t n = p.cols;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1));
  parallel_for(p.rows, grain, [&](int64_t begin, int64_t end) {
    prefault_for_write(out + begin * n, static_cast<size_t>(end - begin) * n * sizeof(T));
    if constexpr (std::is_same_v<E, F32Element>) {
      const float* residual = static_cast<const float*>(p.residual);
      float* sum = static_cast<float*>(p.residual_sum);
      for (int64_t r = begin; r < end; ++r) {
        if (residual != nullptr) {
          add_layer_norm_row_f32(x + r * n, residual + r * n, p.residual_scale, p.weight, p.bias,
                                 p.eps, n, sum + r * n, out + r * n);
        } else {
          layer_norm_row_f32(x + r * n, p.weight, p.bias, p.eps, n, out + r * n);
        }
      }
      return;
    }
    std::vector<float> row(n);
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * n;
      for (int64_t i = 0; i < n; ++i) row[i] = E::load(xr[i]);
      const float mean = sum_of(row.data(), n) / static_cast<float>(n);
      for (int64_t i = 0; i < n; ++i) row[i] -= mean;
      const float var = sum_of_squares(row.data(), n) / static_cast<float>(n);
      const float rstd = 1.0f / std::sqrt(var + p.eps);
      T* o = out + r * n;
      for (int64_t i = 0; i < n; ++i) {
        float y = row[i] * rstd;
        if (p.weight) y *= p.weight[i];
        if (p.bias) y += p.bias[i];
        o[i] = E::store(y);
      }
    }
  });
}

// v = x * silu(gate) into `row` (x alone without a gate).
HFPORT_SIMD_CLONES
void gate_row(const float* __restrict x, const float* __restrict gate, int64_t n,
              float* __restrict row) {
  if (gate == nullptr) {
    for (int64_t i = 0; i < n; ++i) row[i] = x[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) row[i] = x[i] * silu_vectorizable(gate[i]);
}

template <typename E>
void run_gated(const GatedRmsNormParams& p) {
  using T = typename E::Stored;
  const T* x = static_cast<const T*>(p.x);
  const T* gate = static_cast<const T*>(p.gate);
  T* out = static_cast<T*>(p.out);
  const int64_t n = p.cols;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1));
  parallel_for(p.rows, grain, [&](int64_t begin, int64_t end) {
    prefault_for_write(out + begin * n, static_cast<size_t>(end - begin) * n * sizeof(T));
    std::vector<float> xs(n), gs(gate ? n : 0), row(n);
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t i = 0; i < n; ++i) xs[i] = E::load(x[r * n + i]);
      if (gate) {
        for (int64_t i = 0; i < n; ++i) gs[i] = E::load(gate[r * n + i]);
      }
      gate_row(xs.data(), gate ? gs.data() : nullptr, n, row.data());
      T* o = out + r * n;
      for (int64_t g0 = 0; g0 < n; g0 += p.group_size) {
        const float* v = row.data() + g0;
        const float inv = 1.0f / std::sqrt(sum_of_squares(v, p.group_size) /
                                               static_cast<float>(p.group_size) + p.eps);
        for (int64_t i = 0; i < p.group_size; ++i) {
          // As transformers: the normalised value in x's dtype, then the weight.
          o[g0 + i] = E::store(E::load(E::store(v[i] * inv)) * p.weight[g0 + i]);
        }
      }
    }
  });
}

}  // namespace

void rms_norm_gated_cpu(const GatedRmsNormParams& p) {
  dispatch_float(p.dtype, [&](auto tag) { run_gated<decltype(tag)>(p); });
}

void rms_norm_cpu(const NormParams& p) {
  dispatch_float(p.dtype, [&](auto tag) { run_rms<decltype(tag)>(p); });
}

void layer_norm_cpu(const NormParams& p) {
  dispatch_float(p.dtype, [&](auto tag) { run_layer<decltype(tag)>(p); });
}

}  // namespace hfport
