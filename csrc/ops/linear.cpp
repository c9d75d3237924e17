// The entry point of linear: checks shared by both devices, device dispatch, the CPU path around
// the sgemm of kernels/cpu/linear.cpp (operand layout, F16/BF16 conversion, activation), and the
// float64 reference.
#include "ops/linear.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/cast.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/linear.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUBLASLT
#include "ops/cuda/linear.h"
#endif

namespace hfport {

namespace {

constexpr const char* kLinear = "linear";

// require_float without its host check: the shape and dtype checks serve both devices.
void require_float_dtype(const char* arg, const Tensor& t) {
  require_defined(kLinear, arg, t);
  const DType d = t.dtype();
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16) {
    throw ArgumentError(std::string(kLinear) + ": " + arg + " must have dtype F32, F16 or BF16, got " +
                        std::string(dtype_name(d)));
  }
}

// act(v) in F32 over y in place (the activation kernel, with y as input and output).
void apply_activation_f32(LinearActivation activation, float* y, int64_t n) {
  if (activation == LinearActivation::None) return;
  ActivationParams p;
  p.activation = activation == LinearActivation::Gelu ? Activation::GeluErf : Activation::GeluTanh;
  p.n = n;
  p.dtype = DType::F32;
  p.x = y;
  p.out = y;
  activation_cpu(p);
}

double activation_f64(LinearActivation activation, double v) {
  switch (activation) {
    case LinearActivation::Gelu: return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    case LinearActivation::GeluTanh:
      return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    case LinearActivation::None: break;
  }
  return v;
}

// A CUDA x: cuBLASLt when this build has it, else a DeviceError saying how to get it.
Tensor linear_on_cuda(const Device& device, const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& out, const LinearOptions& options) {
#ifdef HFPORT_WITH_CUBLASLT
  (void)device;
  return cuda::linear(x, weight, bias, out, options);
#else
  (void)x, (void)weight, (void)bias, (void)out, (void)options;
  require_usable_device(device, kLinear);  // a build without CUDA says so first
  throw DeviceError(
      "linear: the tensors are on " + device_name(device) +
      ", but this build of hfport has no cuBLASLt (its CUDA toolkit ships no cuBLAS). Install the "
      "toolkit's cuBLAS, or the wheel of your CUDA version (CUDA 13: pip install "
      "nvidia-cublas==13.10.0.20; CUDA 12: nvidia-cublas-cu12), and rebuild: CMake finds the wheel "
      "through the Python interpreter, or pass -DHFPORT_CUBLASLT_ROOT=<folder with "
      "include/cublasLt.h and lib/libcublasLt.so*>.");
#endif
}

}  // namespace

LinearActivation linear_activation_from_name(const std::string& name) {
  if (name == "none") return LinearActivation::None;
  if (name == "gelu") return LinearActivation::Gelu;
  if (name == "gelu_tanh") return LinearActivation::GeluTanh;
  throw ArgumentError("linear: activation must be \"none\", \"gelu\" (erf) or \"gelu_tanh\", got \"" +
                      name + "\"");
}

LinearShapes check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& out) {
  require_float_dtype("x", x);
  if (x.ndim() < 1) {
    throw ArgumentError("linear: x must be [..., in] (at least 1 dimension), got " +
                shape_to_string(x.shape()));
  }
  const int64_t in = x.shape().back();
  require_float_dtype("weight", weight);
  require_ndim(kLinear, "weight", weight, 2, "[out, in]");
  const int64_t out_features = weight.shape()[0];
  require_shape(kLinear, "weight", weight, {out_features, in}, "[out, in]");
  require_same_dtype(kLinear, "weight", weight, "x", x);
  if (bias.defined()) {
    require_float_dtype("bias", bias);
    require_shape(kLinear, "bias", bias, {out_features}, "[out]");
  }
  require_no_overlap(kLinear, out, x, "x");
  require_no_overlap(kLinear, out, weight, "weight");
  require_no_overlap(kLinear, out, bias, "bias");
  LinearShapes s{in == 0 ? 0 : x.numel() / in, in, out_features, x.shape()};
  if (in == 0) {
    s.rows = 1;
    for (size_t i = 0; i + 1 < x.shape().size(); ++i) s.rows *= x.shape()[i];
  }
  s.out_shape.back() = out_features;
  return s;
}

LinearWeightLayout linear_weight_layout(const Tensor& weight) {
  // A dimension of size 1 has no meaningful stride: such weights are read only when contiguous.
  const int64_t out = weight.shape()[0], in = weight.shape()[1];
  const int64_t s0 = weight.strides()[0], s1 = weight.strides()[1];
  if (in > 1 && out > 1 && s1 == 1 && s0 >= in) return {true, s0, true};
  if (in > 1 && out > 1 && s0 == 1 && s1 >= out) return {false, s1, true};
  return {true, std::max<int64_t>(in, 1), weight.is_contiguous()};
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
              const LinearOptions& options) {
  const Device device =
      op_device(kLinear, {{"x", &x}, {"weight", &weight}, {"bias", &bias}, {"out", &out}});
  if (device.type == DeviceType::CUDA) return linear_on_cuda(device, x, weight, bias, out, options);
  const LinearShapes s = check_linear(x, weight, bias, out);
  Tensor result = output_tensor(kLinear, out, x.dtype(), s.out_shape);
  const bool f32 = x.dtype() == DType::F32;
  const Tensor xc = f32 ? x.contiguous() : cast(x, DType::F32);
  // sgemm reads [out, in] rows or the transpose of [in, out] rows in place (linear_weight_layout).
  Tensor w = f32 ? weight : cast(weight, DType::F32);
  const LinearWeightLayout layout = linear_weight_layout(w);
  if (!layout.in_place) w = w.contiguous();
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  Tensor y = f32 ? result : Tensor::empty(DType::F32, s.out_shape);
  LinearParams p;
  p.m = s.rows;
  p.n = s.out;
  p.k = s.in;
  p.x = xc.data_as<float>();
  p.weight = w.data_as<float>();
  p.weight_ld = layout.ld;
  p.weight_is_out_in = layout.out_in;
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.out = y.data_as<float>();
  linear_f32(p);
  apply_activation_f32(options.activation, p.out, s.rows * s.out);
  if (!f32) cast_contiguous(y.data(), DType::F32, result.data(), x.dtype(), y.numel());
  return result;
}

Tensor linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        LinearActivation activation) {
  require_host(kLinear, "x", x);
  require_host(kLinear, "weight", weight);
  if (bias.defined()) require_host(kLinear, "bias", bias);
  const LinearShapes s = check_linear(x, weight, bias, Tensor());
  const Tensor xc = x.contiguous();
  Tensor result = Tensor::empty(DType::F64, s.out_shape);
  double* y = result.data_as<double>();
  const auto& ws = weight.strides();
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int64_t o = 0; o < s.out; ++o) {
      double acc = bias.defined() ? load_as_f64(bias.data(), bias.dtype(), o * bias.strides()[0]) : 0.0;
      for (int64_t i = 0; i < s.in; ++i) {
        acc += load_as_f64(xc.data(), xc.dtype(), r * s.in + i) *
               load_as_f64(weight.data(), weight.dtype(), o * ws[0] + i * ws[1]);
      }
      y[r * s.out + o] = activation_f64(activation, acc);
    }
  }
  return result;
}

}  // namespace hfport
