// hfport.ops for sequence models: the Mamba selective scan and its decode step, causal conv1d and
// its decode step, rms_norm, layer_norm, the activations and linear. Each binding turns its tensor
// arguments into hfport::Tensor views (no copy), releases the GIL, and calls the C++ op; states
// updated in place are written through the caller's own memory (a torch tensor sees the update).
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "core/error.h"
#include "kernels/cpu/selective_scan.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

// An optional tensor argument: None -> an undefined Tensor.
Tensor optional_tensor(const py::object& value, const char* arg_name) {
  if (value.is_none()) return Tensor();
  return tensor_arg(value, arg_name);
}

py::object scan(py::handle u, py::handle delta, py::handle A, py::handle B, py::handle C,
                const py::object& D, const py::object& z, const py::object& delta_bias,
                bool delta_softplus, bool return_last_state, const py::object& out) {
  const Tensor u_t = tensor_arg(u, "u");
  const Tensor delta_t = tensor_arg(delta, "delta");
  const Tensor a_t = tensor_arg(A, "A");
  const Tensor b_t = tensor_arg(B, "B");
  const Tensor c_t = tensor_arg(C, "C");
  SelectiveScanOptions options;
  options.D = optional_tensor(D, "D");
  options.z = optional_tensor(z, "z");
  options.delta_bias = optional_tensor(delta_bias, "delta_bias");
  options.delta_softplus = delta_softplus;
  options.return_last_state = return_last_state;
  options.out = optional_tensor(out, "out");
  SelectiveScanResult result;
  {
    py::gil_scoped_release release;
    result = selective_scan(u_t, delta_t, a_t, b_t, c_t, options);
  }
  if (return_last_state) return py::make_tuple(result.out, result.last_state);
  return py::cast(result.out);
}

Tensor state_update(py::handle state, py::handle x, py::handle dt, py::handle A, py::handle B,
                    py::handle C, const py::object& D, const py::object& z,
                    const py::object& dt_bias, bool dt_softplus) {
  const Tensor state_t = tensor_arg(state, "state");
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor dt_t = tensor_arg(dt, "dt");
  const Tensor a_t = tensor_arg(A, "A");
  const Tensor b_t = tensor_arg(B, "B");
  const Tensor c_t = tensor_arg(C, "C");
  SelectiveStateUpdateOptions options;
  options.D = optional_tensor(D, "D");
  options.z = optional_tensor(z, "z");
  options.dt_bias = optional_tensor(dt_bias, "dt_bias");
  options.dt_softplus = dt_softplus;
  py::gil_scoped_release release;
  return selective_state_update(state_t, x_t, dt_t, a_t, b_t, c_t, options);
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
          py::arg("dt_softplus") = false,
          R"doc(One decode step of the selective scan; updates `state` [batch, dim, N] in place.

x, dt, z: [batch, dim]; A: [dim, N]; B, C: [batch, N] or [batch, G, N]; D, dt_bias: [dim].
Returns y [batch, dim] in x's dtype. L calls on a sequence's columns equal one selective_scan.)doc");
}

}  // namespace hfport::python
