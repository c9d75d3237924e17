#include "kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/storage.h"
#include "kernels/cpu/float_math.h"
#include "kernels/cpu/kernel_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/norm.h"
#endif

namespace hfport {

namespace {

constexpr const char* kRms = "rms_norm";
constexpr const char* kLayer = "layer_norm";
constexpr int64_t kPartialSums = 16;

int64_t hidden_of(const char* op, const Tensor& x) {
  require_float_type(op, "x", x);
  if (x.ndim() < 1) {
    throw ArgumentError(std::string(op) + ": x must be [..., hidden] (at least 1 dimension), got " +
                shape_to_string(x.shape()));
  }
  return x.shape().back();
}

void check_vector(const char* op, const char* arg, const Tensor& t, int64_t hidden) {
  require_float_type(op, arg, t);
  require_shape(op, arg, t, {hidden}, "[hidden]");
}

Device rms_device(const Tensor& x, const Tensor& weight, const RmsNormOptions& o) {
  return op_device(kRms,
                   {{"x", &x}, {"weight", &weight}, {"residual", &o.residual}, {"out", &o.out}});
}

Device layer_device(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  return op_device(kLayer, {{"x", &x}, {"weight", &weight}, {"bias", &bias}, {"out", &out}});
}

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

double at(const Tensor& t, int64_t i) { return load_as_f64(t.data(), t.dtype(), i); }

}  // namespace

void check_rms_norm_arguments(const Tensor& x, const Tensor& weight, const RmsNormOptions& o) {
  const int64_t hidden = hidden_of(kRms, x);
  check_vector(kRms, "weight", weight, hidden);
  if (o.residual.defined()) {
    require_float_type(kRms, "residual", o.residual);
    require_shape(kRms, "residual", o.residual, x.shape(), "x's shape");
    require_same_dtype(kRms, "residual", o.residual, "x", x);
  }
}

void check_layer_norm_arguments(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const int64_t hidden = hidden_of(kLayer, x);
  if (weight.defined()) check_vector(kLayer, "weight", weight, hidden);
  if (bias.defined()) check_vector(kLayer, "bias", bias, hidden);
}

RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps,
                       const RmsNormOptions& o) {
  const Device device = rms_device(x, weight, o);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::rms_norm(x, weight, eps, o);
#endif
  require_host_device(kRms, device);
  check_rms_norm_arguments(x, weight, o);
  const Tensor xc = x.contiguous();
  const Tensor rc = o.residual.defined() ? o.residual.contiguous() : Tensor();
  const Tensor w = as_f32_contiguous(weight);
  RmsNormResult result;
  result.out = output_tensor(kRms, o.out, x.dtype(), x.shape());
  if (rc.defined()) result.residual_sum = Tensor::empty(x.dtype(), x.shape());
  NormParams p;
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.x = xc.data();
  p.residual = rc.defined() ? rc.data() : nullptr;
  p.weight = w.data_as<float>();
  p.eps = static_cast<float>(eps);
  p.add_unit_offset = o.add_unit_offset;
  p.out = result.out.data();
  p.residual_sum = rc.defined() ? result.residual_sum.data() : nullptr;
  dispatch_float(x.dtype(), [&](auto tag) { run_rms<decltype(tag)>(p); });
  return result;
}

RmsNormResult rms_norm_reference(const Tensor& x, const Tensor& weight, double eps,
                                 const RmsNormOptions& o) {
  require_host_device("rms_norm_reference", rms_device(x, weight, o));
  check_rms_norm_arguments(x, weight, o);
  const Tensor xc = x.contiguous();
  const Tensor rc = o.residual.defined() ? o.residual.contiguous() : Tensor();
  const int64_t n = x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  RmsNormResult result;
  result.out = Tensor::empty(DType::F64, x.shape());
  double* out = result.out.data_as<double>();
  if (rc.defined()) result.residual_sum = Tensor::empty(x.dtype(), x.shape());
  std::vector<double> v(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) v[i] = at(xc, r * n + i);
    if (rc.defined()) {
      // The sum rounded to x's dtype, as the kernel (and the model's own add) stores it.
      dispatch_float(x.dtype(), [&](auto tag) {
        using E = decltype(tag);
        auto* s = result.residual_sum.data_as<typename E::Stored>();
        for (int64_t i = 0; i < n; ++i) {
          s[r * n + i] = E::store(static_cast<float>(v[i]) + static_cast<float>(at(rc, r * n + i)));
          v[i] = E::load(s[r * n + i]);
        }
      });
    }
    double squares = 0.0;
    for (int64_t i = 0; i < n; ++i) squares += v[i] * v[i];
    const double inv = 1.0 / std::sqrt(squares / static_cast<double>(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      const double w = at(weight, i * weight.strides()[0]);
      out[r * n + i] = v[i] * inv * (o.add_unit_offset ? 1.0 + w : w);
    }
  }
  return result;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& out) {
  const Device device = layer_device(x, weight, bias, out);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::layer_norm(x, weight, bias, eps, out);
#endif
  require_host_device(kLayer, device);
  check_layer_norm_arguments(x, weight, bias);
  const Tensor xc = x.contiguous();
  const Tensor w = weight.defined() ? as_f32_contiguous(weight) : Tensor();
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  Tensor result = output_tensor(kLayer, out, x.dtype(), x.shape());
  NormParams p;
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.x = xc.data();
  p.weight = w.defined() ? w.data_as<float>() : nullptr;
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.eps = static_cast<float>(eps);
  p.out = result.data();
  dispatch_float(x.dtype(), [&](auto tag) { run_layer<decltype(tag)>(p); });
  return result;
}

Tensor layer_norm_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  require_host_device("layer_norm_reference", layer_device(x, weight, bias, Tensor()));
  check_layer_norm_arguments(x, weight, bias);
  const Tensor xc = x.contiguous();
  const int64_t n = x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  Tensor result = Tensor::empty(DType::F64, x.shape());
  double* out = result.data_as<double>();
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0.0;
    for (int64_t i = 0; i < n; ++i) mean += at(xc, r * n + i);
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (int64_t i = 0; i < n; ++i) var += (at(xc, r * n + i) - mean) * (at(xc, r * n + i) - mean);
    var /= static_cast<double>(n);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < n; ++i) {
      double y = (at(xc, r * n + i) - mean) * rstd;
      if (weight.defined()) y *= at(weight, i * weight.strides()[0]);
      if (bias.defined()) y += at(bias, i * bias.strides()[0]);
      out[r * n + i] = y;
    }
  }
  return result;
}

}  // namespace hfport
