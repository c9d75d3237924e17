// hfport.ops for sequence models: the Mamba selective scan and its decode step, causal conv1d and
// its decode step, rms_norm, layer_norm, the activations and linear. Each binding turns its tensor
// arguments into hfport::Tensor views (no copy), releases the GIL, and calls the C++ op; states
// updated in place are written through the caller's own memory (a torch tensor sees the update).
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "core/error.h"
#include "ops/activation.h"
#include "ops/causal_conv1d.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/selective_scan.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

py::object scan(const DLPackArg& u, const DLPackArg& delta, const DLPackArg& A, const DLPackArg& B,
                const DLPackArg& C,
                const DLPackArg& D, const DLPackArg& z, const DLPackArg& delta_bias,
                bool delta_softplus, bool return_last_state, const DLPackArg& out) {
  const Tensor u_t = tensor_arg(u, "u");
  const Tensor delta_t = tensor_arg(delta, "delta");
  const Tensor a_t = tensor_arg(A, "A");
  const Tensor b_t = tensor_arg(B, "B");
  const Tensor c_t = tensor_arg(C, "C");
  SelectiveScanOptions options;
  options.D = optional_tensor_arg(D, "D");
  options.z = optional_tensor_arg(z, "z");
  options.delta_bias = optional_tensor_arg(delta_bias, "delta_bias");
  options.delta_softplus = delta_softplus;
  options.return_last_state = return_last_state;
  options.out = optional_tensor_arg(out, "out");
  SelectiveScanResult result;
  {
    py::gil_scoped_release release;
    result = selective_scan(u_t, delta_t, a_t, b_t, c_t, options);
  }
  if (return_last_state) return py::make_tuple(result.out, result.last_state);
  return py::cast(result.out);
}

Tensor state_update(const DLPackArg& state, const DLPackArg& x, const DLPackArg& dt,
                    const DLPackArg& A, const DLPackArg& B,
                    const DLPackArg& C, const DLPackArg& D, const DLPackArg& z,
                    const DLPackArg& dt_bias, bool dt_softplus, const DLPackArg& out) {
  const Tensor state_t = tensor_arg(state, "state");
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor dt_t = tensor_arg(dt, "dt");
  const Tensor a_t = tensor_arg(A, "A");
  const Tensor b_t = tensor_arg(B, "B");
  const Tensor c_t = tensor_arg(C, "C");
  SelectiveStateUpdateOptions options;
  options.D = optional_tensor_arg(D, "D");
  options.z = optional_tensor_arg(z, "z");
  options.dt_bias = optional_tensor_arg(dt_bias, "dt_bias");
  options.dt_softplus = dt_softplus;
  options.out = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return selective_state_update(state_t, x_t, dt_t, a_t, b_t, c_t, options);
}

ConvActivation activation_arg(const char* op, const py::object& activation) {
  if (activation.is_none()) return ConvActivation::None;
  if (!py::isinstance<py::str>(activation)) {
    throw ArgumentError(std::string(op) + ": activation must be None or \"silu\", got " +
                std::string(py::str(py::type::of(activation).attr("__name__"))));
  }
  return conv_activation_from_name(op, activation.cast<std::string>());
}

Tensor conv1d(const DLPackArg& x, const DLPackArg& weight, const DLPackArg& bias,
              const py::object& activation, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor w_t = tensor_arg(weight, "weight");
  const Tensor b_t = optional_tensor_arg(bias, "bias");
  const ConvActivation act = activation_arg("causal_conv1d", activation);
  const Tensor out_t = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return causal_conv1d(x_t, w_t, b_t, act, out_t);
}

Tensor conv1d_update(const DLPackArg& x, const DLPackArg& conv_state, const DLPackArg& weight,
                     const DLPackArg& bias, const py::object& activation) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor state_t = tensor_arg(conv_state, "conv_state");
  const Tensor w_t = tensor_arg(weight, "weight");
  const Tensor b_t = optional_tensor_arg(bias, "bias");
  const ConvActivation act = activation_arg("causal_conv1d_update", activation);
  py::gil_scoped_release release;
  return causal_conv1d_update(x_t, state_t, w_t, b_t, act);
}

py::object rms(const DLPackArg& x, const DLPackArg& weight, double eps, const DLPackArg& residual,
               bool add_unit_offset, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor w_t = tensor_arg(weight, "weight");
  RmsNormOptions options;
  options.residual = optional_tensor_arg(residual, "residual");
  options.add_unit_offset = add_unit_offset;
  options.out = optional_tensor_arg(out, "out");
  RmsNormResult result;
  {
    py::gil_scoped_release release;
    result = rms_norm(x_t, w_t, eps, options);
  }
  if (options.residual.defined()) return py::make_tuple(result.out, result.residual_sum);
  return py::cast(result.out);
}

Tensor layer(const DLPackArg& x, const DLPackArg& weight, const DLPackArg& bias, double eps,
             const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor w_t = optional_tensor_arg(weight, "weight");
  const Tensor b_t = optional_tensor_arg(bias, "bias");
  const Tensor out_t = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return layer_norm(x_t, w_t, b_t, eps, out_t);
}

Tensor gelu_op(const DLPackArg& x, const std::string& approximate, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const GeluApproximation mode = gelu_approximation_from_name(approximate);
  const Tensor out_t = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return gelu(x_t, mode, out_t);
}

Tensor silu_op(const DLPackArg& x, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor out_t = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return silu(x_t, out_t);
}

Tensor swiglu_op(const DLPackArg& gate, const DLPackArg& up, const DLPackArg& out) {
  const Tensor gate_t = tensor_arg(gate, "gate");
  const Tensor up_t = tensor_arg(up, "up");
  const Tensor out_t = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return swiglu(gate_t, up_t, out_t);
}

Tensor linear_op(const DLPackArg& x, const DLPackArg& weight, const DLPackArg& bias,
                 const std::optional<std::string>& activation, bool allow_tf32,
                 const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor w_t = tensor_arg(weight, "weight");
  const Tensor b_t = optional_tensor_arg(bias, "bias");
  const Tensor out_t = optional_tensor_arg(out, "out");
  LinearOptions options;
  options.activation = linear_activation_from_name(activation.value_or("none"));
  options.allow_tf32 = allow_tf32;
  py::gil_scoped_release release;
  return linear(x_t, w_t, b_t, out_t, options);
}

}  // namespace

void bind_sequence_ops(py::module_& ops) {
  ops.def("selective_scan", &scan, py::arg("u"), py::arg("delta"), py::arg("A"), py::arg("B"),
          py::arg("C"), py::arg("D") = py::none(), py::arg("z") = py::none(),
          py::arg("delta_bias") = py::none(), py::arg("delta_softplus") = false,
          py::arg("return_last_state") = false, py::kw_only(), py::arg("out") = py::none(),
          R"doc(Mamba-1 selective scan with mamba_ssm's selective_scan_fn shapes.

u, delta, z: [batch, dim, L] (one dtype: f32, f16 or bf16); A: [dim, N]; B, C: [dim, N] (time
invariant), [batch, N, L] or [batch, G, N, L]; D, delta_bias: [dim]. Computes in float32:
dt = softplus(delta + delta_bias) (when delta_softplus), h = exp(dt A) h + dt B u, y = C.h + D u,
y *= silu(z). Returns y [batch, dim, L] in u's dtype, and with return_last_state the tuple
(y, last_state [batch, dim, N] f32).)doc");
  ops.def("selective_state_update", &state_update, py::arg("state"), py::arg("x"), py::arg("dt"),
          py::arg("A"), py::arg("B"), py::arg("C"), py::arg("D") = py::none(),
          py::arg("z") = py::none(), py::arg("dt_bias") = py::none(),
          py::arg("dt_softplus") = false, py::kw_only(), py::arg("out") = py::none(),
          R"doc(One decode step of the selective scan; updates `state` [batch, dim, N] in place.

x, dt, z: [batch, dim]; A: [dim, N]; B, C: [batch, N] or [batch, G, N]; D, dt_bias: [dim].
Returns y [batch, dim] in x's dtype (written into `out` when given). L calls on a sequence's
columns equal one selective_scan.)doc");
  ops.def("causal_conv1d", &conv1d, py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(),
          py::arg("activation") = py::none(), py::kw_only(), py::arg("out") = py::none(),
          R"doc(Depthwise causal conv1d: x [batch, dim, L], weight [dim, width], bias [dim].

out[b,d,t] = act(bias[d] + sum_k weight[d,k] x[b,d,t-width+1+k]), zeros before t = 0; activation
None or "silu". Returns [batch, dim, L] in x's dtype (float32 sums).)doc");
  ops.def("causal_conv1d_update", &conv1d_update, py::arg("x"), py::arg("conv_state"),
          py::arg("weight"), py::arg("bias") = py::none(), py::arg("activation") = py::none(),
          R"doc(One decode step of causal_conv1d; shifts conv_state [batch, dim, S] in place.

x: [batch, dim] (one step) or [batch, dim, L] (L steps in order); S >= width - 1 (transformers'
Mamba cache keeps S = width). Returns x's shape and dtype.)doc");
  ops.def("rms_norm", &rms, py::arg("x"), py::arg("weight"), py::arg("eps") = 1e-6, py::kw_only(),
          py::arg("residual") = py::none(), py::arg("add_unit_offset") = false,
          py::arg("out") = py::none(),
          R"doc(RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight (or * (1 + weight) with
add_unit_offset, as Gemma). With residual: s = x + residual, returns (rms_norm(s), s). Float32
statistics; f16/bf16 rounding as transformers' LlamaRMSNorm / GemmaRMSNorm.)doc");
  ops.def("layer_norm", &layer, py::arg("x"), py::arg("weight") = py::none(),
          py::arg("bias") = py::none(), py::arg("eps") = 1e-5, py::kw_only(),
          py::arg("out") = py::none(),
          "LayerNorm over the last dim (biased variance, float32 statistics), as torch's.");
  ops.def("gelu", &gelu_op, py::arg("x"), py::arg("approximate") = "none", py::kw_only(),
          py::arg("out") = py::none(), "torch's gelu: approximate \"none\" (erf) or \"tanh\".");
  ops.def("silu", &silu_op, py::arg("x"), py::kw_only(), py::arg("out") = py::none(),
          "silu(x) = x * sigmoid(x).");
  ops.def("swiglu", &swiglu_op, py::arg("gate"), py::arg("up"), py::kw_only(),
          py::arg("out") = py::none(), "silu(gate) * up; gate and up of one shape and dtype.");
  ops.def("linear", &linear_op, py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(),
          py::kw_only(), py::arg("activation") = py::none(), py::arg("allow_tf32") = false,
          py::arg("out") = py::none(),
          R"doc(act(x @ weight.T + bias), as torch.nn.functional.linear: x [..., in], weight [out, in]
(x's dtype; a transposed view is read in place), bias [out]. activation: None or "none",
"gelu_tanh" (torch's gelu(approximate="tanh")), or "gelu" (exact, erf). Float32 sums.
CPU: OpenBLAS sgemm (f16/bf16 converted to float32), the activation applied before rounding to
x's dtype. CUDA: cuBLASLt, bias and gelu_tanh fused in its epilogue (exact gelu as a second pass);
f32 is multiplied in f32 unless allow_tf32=True (ignored on the CPU).)doc");
}

}  // namespace hfport::python
