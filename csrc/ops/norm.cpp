// The entry points of rms_norm, layer_norm and rms_norm_gated: checks, device dispatch, operands
// and outputs, and the float64 references; the CPU kernels are kernels/cpu/norm.cpp, the CUDA side
// ops/cuda/norm.cpp.
#include "ops/norm.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/norm.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/norm.h"
#endif

namespace hfport {

namespace {

constexpr const char* kRms = "rms_norm";
constexpr const char* kLayer = "layer_norm";
constexpr const char* kGated = "rms_norm_gated";

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

double at(const Tensor& t, int64_t i) { return load_as_f64(t.data(), t.dtype(), i); }

Device gated_device(const Tensor& x, const Tensor& weight, const GatedRmsNormOptions& o) {
  return op_device(kGated, {{"x", &x}, {"weight", &weight}, {"gate", &o.gate}, {"out", &o.out}});
}

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
  p.dtype = x.dtype();
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.x = xc.data();
  p.residual = rc.defined() ? rc.data() : nullptr;
  p.weight = w.data_as<float>();
  p.eps = static_cast<float>(eps);
  p.add_unit_offset = o.add_unit_offset;
  p.out = result.out.data();
  p.residual_sum = rc.defined() ? result.residual_sum.data() : nullptr;
  rms_norm_cpu(p);
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
  p.dtype = x.dtype();
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.x = xc.data();
  p.weight = w.defined() ? w.data_as<float>() : nullptr;
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.eps = static_cast<float>(eps);
  p.out = result.data();
  layer_norm_cpu(p);
  return result;
}

Tensor add_into_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& scale,
                           const Tensor& weight, const Tensor& bias, double eps) {
  constexpr const char* kAddLayer = "add_into_layer_norm";
  const Device device = op_device(kAddLayer, {{"x", &x}, {"residual", &residual}, {"scale", &scale},
                                              {"weight", &weight}, {"bias", &bias}});
  require_host_device(kAddLayer, device);
  check_layer_norm_arguments(x, weight, bias);
  if (x.dtype() != DType::F32 || !x.is_contiguous()) {
    throw ArgumentError(std::string(kAddLayer) + ": x must be a contiguous F32 tensor (it is "
                        "written in place), got " + std::string(dtype_name(x.dtype())) +
                        (x.is_contiguous() ? "" : ", not contiguous"));
  }
  require_defined(kAddLayer, "residual", residual);
  require_shape(kAddLayer, "residual", residual, x.shape(), "x's shape");
  require_same_dtype(kAddLayer, "residual", residual, "x", x);
  const int64_t hidden = x.shape().back();
  if (scale.defined()) check_vector(kAddLayer, "scale", scale, hidden);
  require_no_overlap(kAddLayer, x, residual, "residual");
  const Tensor rc = residual.contiguous();
  const Tensor s = scale.defined() ? as_f32_contiguous(scale) : Tensor();
  const Tensor w = weight.defined() ? as_f32_contiguous(weight) : Tensor();
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  Tensor result = Tensor::empty(DType::F32, x.shape());
  NormParams p;
  p.dtype = DType::F32;
  p.cols = hidden;
  p.rows = hidden == 0 ? 0 : x.numel() / hidden;
  p.x = x.data();
  p.residual = rc.data();
  p.residual_sum = x.data();
  p.residual_scale = s.defined() ? s.data_as<float>() : nullptr;
  p.weight = w.defined() ? w.data_as<float>() : nullptr;
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.eps = static_cast<float>(eps);
  p.out = result.data();
  layer_norm_cpu(p);
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

int64_t check_rms_norm_gated_arguments(const Tensor& x, const Tensor& weight,
                                       const GatedRmsNormOptions& o) {
  const int64_t hidden = hidden_of(kGated, x);
  check_vector(kGated, "weight", weight, hidden);
  if (o.gate.defined()) {
    require_float_type(kGated, "gate", o.gate);
    require_shape(kGated, "gate", o.gate, x.shape(), "x's shape");
    require_same_dtype(kGated, "gate", o.gate, "x", x);
  }
  if (o.group_size < 0 || (o.group_size > 0 && hidden % o.group_size != 0)) {
    throw ArgumentError(std::string(kGated) + ": group_size must be 0 (the whole row) or divide "
                        "hidden = " + std::to_string(hidden) + ", got " +
                        std::to_string(o.group_size));
  }
  return o.group_size == 0 ? hidden : o.group_size;
}

Tensor rms_norm_gated(const Tensor& x, const Tensor& weight, double eps,
                      const GatedRmsNormOptions& o) {
  const Device device = gated_device(x, weight, o);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::rms_norm_gated(x, weight, eps, o);
#endif
  require_host_device(kGated, device);
  const int64_t group = check_rms_norm_gated_arguments(x, weight, o);
  const Tensor xc = x.contiguous();
  const Tensor gc = o.gate.defined() ? o.gate.contiguous() : Tensor();
  const Tensor w = as_f32_contiguous(weight);
  Tensor result = output_tensor(kGated, o.out, x.dtype(), x.shape());
  GatedRmsNormParams p;
  p.dtype = x.dtype();
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.group_size = group;
  p.x = xc.data();
  p.gate = gc.defined() ? gc.data() : nullptr;
  p.weight = w.data_as<float>();
  p.eps = static_cast<float>(eps);
  p.out = result.data();
  if (p.rows > 0) rms_norm_gated_cpu(p);
  return result;
}

Tensor rms_norm_gated_reference(const Tensor& x, const Tensor& weight, double eps,
                                const GatedRmsNormOptions& o) {
  require_host_device("rms_norm_gated_reference", gated_device(x, weight, o));
  const int64_t group = check_rms_norm_gated_arguments(x, weight, o);
  const Tensor xc = x.contiguous();
  const Tensor gc = o.gate.defined() ? o.gate.contiguous() : Tensor();
  const int64_t n = x.shape().back();
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  Tensor result = Tensor::empty(DType::F64, x.shape());
  double* out = result.data_as<double>();
  std::vector<double> v(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      v[i] = at(xc, r * n + i);
      if (gc.defined()) {
        const double g = at(gc, r * n + i);
        v[i] *= g / (1.0 + std::exp(-g));
      }
    }
    for (int64_t g0 = 0; g0 < n; g0 += group) {
      double squares = 0.0;
      for (int64_t i = g0; i < g0 + group; ++i) squares += v[i] * v[i];
      const double inv = 1.0 / std::sqrt(squares / static_cast<double>(group) + eps);
      for (int64_t i = g0; i < g0 + group; ++i) {
        out[r * n + i] = v[i] * inv * at(weight, i * weight.strides()[0]);
      }
    }
  }
  return result;
}

}  // namespace hfport
