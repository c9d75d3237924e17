// hfport::gelu, silu and swiglu for tensors on a CUDA device: the checks the CPU side runs
// (ops/activation.h), contiguous operands on the device, and the kernel of
// kernels/cuda/activation.cu on hfport's work stream. Host code, compiled only in builds with CUDA.
#include "ops/cuda/activation.h"

#include "kernels/cuda/activation.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

// out = f(x) (f(x, up) for swiglu) elementwise; the checks have run.
Tensor run(const char* op, Activation kind, const Tensor& x, const Tensor& up, const Tensor& out) {
  const CurrentDevice current(x.device());
  const Tensor xc = contiguous_as(op, kind == Activation::Swiglu ? "gate" : "x", x, x.dtype());
  const Tensor uc = up.defined() ? contiguous_as(op, "up", up, x.dtype()) : Tensor();
  Tensor result = output_on(op, out, x.dtype(), x.shape(), x.device());
  ActivationParams p;
  p.activation = kind;
  p.n = x.numel();
  p.dtype = x.dtype();
  p.x = xc.data();
  p.up = uc.defined() ? uc.data() : nullptr;
  p.out = result.data();
  activation(p, op_stream());
  return result;
}

}  // namespace

Tensor gelu(const Tensor& x, GeluApproximation approximate, const Tensor& out) {
  check_activation_arguments("gelu", x);
  const Activation kind =
      approximate == GeluApproximation::Tanh ? Activation::GeluTanh : Activation::GeluErf;
  return run("gelu", kind, x, Tensor(), out);
}

Tensor silu(const Tensor& x, const Tensor& out) {
  check_activation_arguments("silu", x);
  return run("silu", Activation::Silu, x, Tensor(), out);
}

Tensor swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  check_swiglu_arguments(gate, up);
  return run("swiglu", Activation::Swiglu, gate, up, out);
}

}  // namespace hfport::cuda
