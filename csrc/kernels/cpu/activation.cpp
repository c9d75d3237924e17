#include "kernels/cpu/activation.h"

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "core/storage.h"
#include "kernels/cpu/float_math.h"
#include "kernels/cpu/kernel_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/activation.h"
#endif

namespace hfport {

namespace {

constexpr int64_t kElementGrain = 1 << 15;

// out[i] = f(x[i]) (or f(x[i], y[i]) when `y` is defined), in F32, rounded once to x's dtype.
template <typename Fn>
Tensor elementwise(const char* op, const Tensor& x, const Tensor& y, const Tensor& out, Fn&& f) {
  const Tensor xc = x.contiguous();
  const Tensor yc = y.defined() ? y.contiguous() : Tensor();
  Tensor result = output_tensor(op, out, x.dtype(), x.shape());
  dispatch_float(x.dtype(), [&](auto tag) {
    using E = decltype(tag);
    using T = typename E::Stored;
    const T* in = xc.data_as<T>();
    const T* in2 = yc.defined() ? yc.data_as<T>() : nullptr;
    T* dst = result.data_as<T>();
    parallel_for(x.numel(), kElementGrain, [&](int64_t begin, int64_t end) {
      prefault_for_write(dst + begin, static_cast<size_t>(end - begin) * sizeof(T));
      if (in2) {
        for (int64_t i = begin; i < end; ++i) dst[i] = E::store(f(E::load(in[i]), E::load(in2[i])));
      } else {
        for (int64_t i = begin; i < end; ++i) dst[i] = E::store(f(E::load(in[i]), 0.0f));
      }
    });
  });
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
  if (approximate == GeluApproximation::Tanh) {
    return elementwise("gelu", x, Tensor(), out, [](float v, float) { return gelu_tanh_f32(v); });
  }
  return elementwise("gelu", x, Tensor(), out, [](float v, float) { return gelu_erf_f32(v); });
}

Tensor silu(const Tensor& x, const Tensor& out) {
  const Device device = op_device("silu", {{"x", &x}, {"out", &out}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::silu(x, out);
#endif
  require_host_device("silu", device);
  check_activation_arguments("silu", x);
  return elementwise("silu", x, Tensor(), out, [](float v, float) { return silu_vectorizable(v); });
}

Tensor swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const Device device = op_device(kSwiglu, {{"gate", &gate}, {"up", &up}, {"out", &out}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::swiglu(gate, up, out);
#endif
  require_host_device(kSwiglu, device);
  check_swiglu_arguments(gate, up);
  return elementwise(kSwiglu, gate, up, out,
                     [](float g, float u) { return silu_vectorizable(g) * u; });
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
