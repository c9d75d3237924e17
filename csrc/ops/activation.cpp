// The entry points of gelu, silu and swiglu: checks, device dispatch, operands and outputs, and the
// float64 references; the CPU kernel is kernels/cpu/activation.cpp.
#include "ops/activation.h"

#include <cmath>

#include "core/error.h"
#include "kernels/cpu/activation.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/activation.h"
#endif

namespace hfport {

namespace {

// The CPU kernel over contiguous copies of x (and y, for swiglu) into `out` or a fresh tensor.
Tensor run_cpu(const char* op, Activation kind, const Tensor& x, const Tensor& y,
               const Tensor& out) {
  const Tensor xc = x.contiguous();
  const Tensor yc = y.defined() ? y.contiguous() : Tensor();
  Tensor result = output_tensor(op, out, x.dtype(), x.shape());
  ActivationParams p;
  p.activation = kind;
  p.n = x.numel();
  p.dtype = x.dtype();
  p.x = xc.data();
  p.up = yc.defined() ? yc.data() : nullptr;
  p.out = result.data();
  activation_cpu(p);
  return result;
}

// The float64 twin: an F64 result from f applied to the exact inputs.
template <typename Fn>
Tensor elementwise_reference(const Tensor& x, const Tensor& y, Fn&& f) {
  const Tensor xc = x.contiguous();
  const Tensor yc = y.defined() ? y.contiguous() : Tensor();
  Tensor result = Tensor::empty(DType::F64, x.shape());
  double* dst = result.data_as<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double a = load_as_f64(xc.data(), xc.dtype(), i);
    const double b = yc.defined() ? load_as_f64(yc.data(), yc.dtype(), i) : 0.0;
    dst[i] = f(a, b);
  }
  return result;
}

constexpr const char* kSwiglu = "swiglu";

double silu_f64(double x) { return x / (1.0 + std::exp(-x)); }

}  // namespace

void check_activation_arguments(const char* op, const Tensor& x) { require_float_type(op, "x", x); }

void check_swiglu_arguments(const Tensor& gate, const Tensor& up) {
  require_float_type(kSwiglu, "gate", gate);
  require_float_type(kSwiglu, "up", up);
  require_shape(kSwiglu, "up", up, gate.shape(), "gate's shape");
  require_same_dtype(kSwiglu, "up", up, "gate", gate);
}

GeluApproximation gelu_approximation_from_name(const std::string& name) {
  if (name == "none") return GeluApproximation::None;
  if (name == "tanh") return GeluApproximation::Tanh;
  throw ArgumentError("gelu: approximate must be \"none\" or \"tanh\", got \"" + name + "\"");
}

Tensor gelu(const Tensor& x, GeluApproximation approximate, const Tensor& out) {
  const Device device = op_device("gelu", {{"x", &x}, {"out", &out}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::gelu(x, approximate, out);
#endif
  require_host_device("gelu", device);
  check_activation_arguments("gelu", x);
  const Activation kind =
      approximate == GeluApproximation::Tanh ? Activation::GeluTanh : Activation::GeluErf;
  return run_cpu("gelu", kind, x, Tensor(), out);
}

Tensor silu(const Tensor& x, const Tensor& out) {
  const Device device = op_device("silu", {{"x", &x}, {"out", &out}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::silu(x, out);
#endif
  require_host_device("silu", device);
  check_activation_arguments("silu", x);
  return run_cpu("silu", Activation::Silu, x, Tensor(), out);
}

Tensor swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const Device device = op_device(kSwiglu, {{"gate", &gate}, {"up", &up}, {"out", &out}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::swiglu(gate, up, out);
#endif
  require_host_device(kSwiglu, device);
  check_swiglu_arguments(gate, up);
  return run_cpu(kSwiglu, Activation::Swiglu, gate, up, out);
}

Tensor gelu_reference(const Tensor& x, GeluApproximation approximate) {
  require_float("gelu", "x", x);
  if (approximate == GeluApproximation::Tanh) {
    return elementwise_reference(x, Tensor(), [](double v, double) {
      const double inner = std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v);
      return 0.5 * v * (1.0 + std::tanh(inner));
    });
  }
  return elementwise_reference(
      x, Tensor(), [](double v, double) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); });
}

Tensor silu_reference(const Tensor& x) {
  require_float("silu", "x", x);
  return elementwise_reference(x, Tensor(), [](double v, double) { return silu_f64(v); });
}

Tensor swiglu_reference(const Tensor& gate, const Tensor& up) {
  require_host_device("swiglu_reference", op_device(kSwiglu, {{"gate", &gate}, {"up", &up}}));
  check_swiglu_arguments(gate, up);
  return elementwise_reference(gate, up, [](double g, double u) { return silu_f64(g) * u; });
}

}  // namespace hfport
