// The entry points of causal_conv1d and causal_conv1d_update: checks, device dispatch, operands and
// outputs, and the float64 reference; the CPU kernels are kernels/cpu/causal_conv1d.cpp.
#include "ops/causal_conv1d.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/cpu/causal_conv1d.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/causal_conv1d.h"
#endif

namespace hfport {

namespace {

constexpr const char* kConv = "causal_conv1d";
constexpr const char* kConvUpdate = "causal_conv1d_update";

void check_weight_bias(const char* op, const Tensor& weight, const Tensor& bias, int64_t dim) {
  require_float_type(op, "weight", weight);
  require_ndim(op, "weight", weight, 2, "[dim, width]");
  require_shape(op, "weight", weight, {dim, weight.shape()[1]}, "[dim, width]");
  if (weight.shape()[1] < 1) {
    throw ArgumentError(std::string(op) + ": weight must have width >= 1, got " +
                shape_to_string(weight.shape()));
  }
  if (bias.defined()) {
    require_float_type(op, "bias", bias);
    require_shape(op, "bias", bias, {dim}, "[dim]");
  }
}

double element_f64(const Tensor& t, int64_t i0, int64_t i1, int64_t i2) {
  const auto& s = t.strides();
  return load_as_f64(t.data(), t.dtype(), static_cast<size_t>(i0 * s[0] + i1 * s[1] + i2 * s[2]));
}

Device conv_device(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  return op_device(kConv, {{"x", &x}, {"weight", &weight}, {"bias", &bias}, {"out", &out}});
}

}  // namespace

void check_causal_conv1d_arguments(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  require_float_type(kConv, "x", x);
  require_ndim(kConv, "x", x, 3, "[batch, dim, L]");
  check_weight_bias(kConv, weight, bias, x.shape()[1]);
}

ConvUpdateShapes check_causal_conv1d_update_arguments(const Tensor& x, const Tensor& conv_state,
                                                      const Tensor& weight, const Tensor& bias) {
  require_float_type(kConvUpdate, "x", x);
  if (x.ndim() != 2 && x.ndim() != 3) {
    throw ArgumentError(std::string(kConvUpdate) + ": x must be [batch, dim] or [batch, dim, L], got " +
                shape_to_string(x.shape()));
  }
  ConvUpdateShapes s;
  s.batch = x.shape()[0];
  s.dim = x.shape()[1];
  s.seqlen = x.ndim() == 3 ? x.shape()[2] : 1;
  check_weight_bias(kConvUpdate, weight, bias, s.dim);
  s.width = weight.shape()[1];
  require_float_type(kConvUpdate, "conv_state", conv_state);
  require_ndim(kConvUpdate, "conv_state", conv_state, 3, "[batch, dim, S]");
  s.state_len = conv_state.shape()[2];
  require_shape(kConvUpdate, "conv_state", conv_state, {s.batch, s.dim, s.state_len},
                "[batch, dim, S]");
  if (s.state_len < s.width - 1) {
    throw ArgumentError(std::string(kConvUpdate) + ": conv_state must keep S >= width - 1 = " +
                std::to_string(s.width - 1) + " columns, got " + shape_to_string(conv_state.shape()));
  }
  return s;
}

ConvActivation conv_activation_from_name(const char* op, const std::string& name) {
  if (name.empty() || name == "none") return ConvActivation::None;
  if (name == "silu" || name == "swish") return ConvActivation::Silu;
  throw ArgumentError(std::string(op) + ": activation must be None, \"silu\" or \"swish\", got \"" + name +
              "\"");
}

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                     ConvActivation activation, const Tensor& out) {
  const Device device = conv_device(x, weight, bias, out);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::causal_conv1d(x, weight, bias, activation, out);
#endif
  require_host_device(kConv, device);
  check_causal_conv1d_arguments(x, weight, bias);
  Tensor result = output_tensor(kConv, out, x.dtype(), x.shape());
  const Tensor w = as_f32_contiguous(weight);
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  if (x.numel() == 0) return result;
  causal_conv1d_cpu(causal_conv1d_params(x, w, b, activation, result));
  return result;
}

Tensor causal_conv1d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                               ConvActivation activation) {
  require_host_device("causal_conv1d_reference", conv_device(x, weight, bias, Tensor()));
  check_causal_conv1d_arguments(x, weight, bias);
  const int64_t batch = x.shape()[0], dim = x.shape()[1], seqlen = x.shape()[2];
  const int64_t width = weight.shape()[1];
  Tensor result = Tensor::empty(DType::F64, x.shape());
  double* out = result.data_as<double>();
  const auto& ws = weight.strides();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t d = 0; d < dim; ++d) {
      for (int64_t t = 0; t < seqlen; ++t) {
        double acc = bias.defined()
                         ? load_as_f64(bias.data(), bias.dtype(), d * bias.strides()[0])
                         : 0.0;
        for (int64_t k = 0; k < width; ++k) {
          const int64_t src = t - (width - 1) + k;
          if (src < 0) continue;
          acc += load_as_f64(weight.data(), weight.dtype(), d * ws[0] + k * ws[1]) *
                 element_f64(x, b, d, src);
        }
        if (activation == ConvActivation::Silu) acc = acc / (1.0 + std::exp(-acc));
        out[(b * dim + d) * seqlen + t] = acc;
      }
    }
  }
  return result;
}

Tensor causal_conv1d_update(const Tensor& x, const Tensor& conv_state, const Tensor& weight,
                            const Tensor& bias, ConvActivation activation) {
  const Device device = op_device(kConvUpdate, {{"x", &x},
                                                {"conv_state", &conv_state},
                                                {"weight", &weight},
                                                {"bias", &bias}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) {
    return cuda::causal_conv1d_update(x, conv_state, weight, bias, activation);
  }
#endif
  require_host_device(kConvUpdate, device);
  const ConvUpdateShapes s = check_causal_conv1d_update_arguments(x, conv_state, weight, bias);
  Tensor result = Tensor::empty(x.dtype(), x.shape());
  const Tensor w = as_f32_contiguous(weight);
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  causal_conv1d_update_cpu(
      causal_conv1d_update_params(s, x, conv_state, w, b, activation, result));
  return result;
}

CausalConv1dParams causal_conv1d_params(const Tensor& x, const Tensor& weight_f32,
                                        const Tensor& bias_f32, ConvActivation activation,
                                        const Tensor& out) {
  CausalConv1dParams p;
  p.batch = x.shape()[0];
  p.dim = x.shape()[1];
  p.seqlen = x.shape()[2];
  p.width = weight_f32.shape()[1];
  p.dtype = x.dtype();
  p.x = x.data();
  read_strides(x, {&p.x_batch_stride, &p.x_dim_stride, &p.x_seq_stride});
  p.weight = weight_f32.data_as<float>();
  p.bias = bias_f32.defined() ? bias_f32.data_as<float>() : nullptr;
  p.silu = activation == ConvActivation::Silu;
  p.out = out.data();
  return p;
}

CausalConv1dUpdateParams causal_conv1d_update_params(const ConvUpdateShapes& shapes,
                                                     const Tensor& x, const Tensor& conv_state,
                                                     const Tensor& weight_f32,
                                                     const Tensor& bias_f32,
                                                     ConvActivation activation, const Tensor& out) {
  CausalConv1dUpdateParams p;
  p.batch = shapes.batch;
  p.dim = shapes.dim;
  p.seqlen = shapes.seqlen;
  p.width = shapes.width;
  p.dtype = x.dtype();
  p.x = x.data();
  p.x_batch_stride = x.strides()[0];
  p.x_dim_stride = x.strides()[1];
  p.x_seq_stride = x.ndim() == 3 ? x.strides()[2] : 0;  // one step: t is always 0
  p.state_dtype = conv_state.dtype();
  p.conv_state = conv_state.data();
  p.state_len = shapes.state_len;
  read_strides(conv_state, {&p.state_batch_stride, &p.state_dim_stride, &p.state_seq_stride});
  p.weight = weight_f32.data_as<float>();
  p.bias = bias_f32.defined() ? bias_f32.data_as<float>() : nullptr;
  p.silu = activation == ConvActivation::Silu;
  p.out = out.data();
  return p;
}

}  // namespace hfport
