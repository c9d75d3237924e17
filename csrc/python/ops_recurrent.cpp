// hfport.ops for the recurrent families: Mamba-2's SSD scan, its decode step and its gated
// RMSNorm; RWKV-4's WKV and its decode step. Each binding views its tensor arguments as hfport::Tensor (no copy), releases the GIL
// and calls the C++ op; a state updated in place is written through the caller's own memory.
#include <pybind11/stl.h>

#include <limits>
#include <utility>

#include "core/error.h"
#include "ops/norm.h"
#include "ops/rwkv_wkv.h"
#include "ops/ssd_scan.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

using DtLimit = std::pair<double, double>;

py::object ssd(const DLPackArg& x, const DLPackArg& dt, const DLPackArg& A, const DLPackArg& B,
               const DLPackArg& C,
               int64_t chunk_size, const DLPackArg& D, const DLPackArg& dt_bias,
               bool dt_softplus, DtLimit dt_limit, const DLPackArg& initial_states,
               bool return_final_states, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor dt_t = tensor_arg(dt, "dt");
  const Tensor a_t = tensor_arg(A, "A");
  const Tensor b_t = tensor_arg(B, "B");
  const Tensor c_t = tensor_arg(C, "C");
  SsdScanOptions options;
  options.chunk_size = chunk_size;
  options.D = optional_tensor_arg(D, "D");
  options.dt_bias = optional_tensor_arg(dt_bias, "dt_bias");
  options.dt_softplus = dt_softplus;
  options.dt_min = dt_limit.first;
  options.dt_max = dt_limit.second;
  options.initial_states = optional_tensor_arg(initial_states, "initial_states");
  options.return_final_states = return_final_states;
  options.out = optional_tensor_arg(out, "out");
  SsdScanResult result;
  {
    py::gil_scoped_release release;
    result = ssd_scan(x_t, dt_t, a_t, b_t, c_t, options);
  }
  if (return_final_states) return py::make_tuple(result.out, result.final_states);
  return py::cast(result.out);
}

Tensor ssd_update(const DLPackArg& state, const DLPackArg& x, const DLPackArg& dt,
                  const DLPackArg& A, const DLPackArg& B,
                  const DLPackArg& C, const DLPackArg& D, const DLPackArg& dt_bias,
                  bool dt_softplus,
                  DtLimit dt_limit, const DLPackArg& out) {
  const Tensor state_t = tensor_arg(state, "state");
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor dt_t = tensor_arg(dt, "dt");
  const Tensor a_t = tensor_arg(A, "A");
  const Tensor b_t = tensor_arg(B, "B");
  const Tensor c_t = tensor_arg(C, "C");
  SsdStateUpdateOptions options;
  options.D = optional_tensor_arg(D, "D");
  options.dt_bias = optional_tensor_arg(dt_bias, "dt_bias");
  options.dt_softplus = dt_softplus;
  options.dt_min = dt_limit.first;
  options.dt_max = dt_limit.second;
  options.out = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return ssd_state_update(state_t, x_t, dt_t, a_t, b_t, c_t, options);
}

Tensor gated_norm(const DLPackArg& x, const DLPackArg& weight, const DLPackArg& gate, double eps,
                  int64_t group_size, const DLPackArg& out) {
  const Tensor x_t = tensor_arg(x, "x");
  const Tensor w_t = tensor_arg(weight, "weight");
  GatedRmsNormOptions options;
  options.gate = optional_tensor_arg(gate, "gate");
  options.group_size = group_size;
  options.out = optional_tensor_arg(out, "out");
  py::gil_scoped_release release;
  return rms_norm_gated(x_t, w_t, eps, options);
}

// (num, den, max) from Python: None, or a sequence of three tensors.
RwkvWkvState state_arg(const char* op, const DLPackArg& state) {
  if (state.is_none()) return {};
  if (!py::isinstance<py::sequence>(state) || py::len(state) != 3) {
    throw ArgumentError(std::string(op) + ": state must be None or (num, den, max), got " +
                        std::string(py::str(py::type::of(state).attr("__name__"))));
  }
  const py::sequence parts = state;
  return {tensor_arg(parts[0], "state num"), tensor_arg(parts[1], "state den"),
          tensor_arg(parts[2], "state max")};
}

py::tuple wkv(const DLPackArg& w, const DLPackArg& u, const DLPackArg& k, const DLPackArg& v,
              const DLPackArg& state,
              const DLPackArg& mask, const DLPackArg& out) {
  const Tensor w_t = tensor_arg(w, "w");
  const Tensor u_t = tensor_arg(u, "u");
  const Tensor k_t = tensor_arg(k, "k");
  const Tensor v_t = tensor_arg(v, "v");
  RwkvWkvOptions options;
  options.state = state_arg("rwkv_wkv", state);
  options.mask = optional_tensor_arg(mask, "mask");
  options.out = optional_tensor_arg(out, "out");
  RwkvWkvResult result;
  {
    py::gil_scoped_release release;
    result = rwkv_wkv(w_t, u_t, k_t, v_t, options);
  }
  return py::make_tuple(result.out,
                        py::make_tuple(result.state.num, result.state.den, result.state.max));
}

Tensor wkv_update(const DLPackArg& state, const DLPackArg& w, const DLPackArg& u,
                  const DLPackArg& k,
                  const DLPackArg& v) {
  const RwkvWkvState state_t = state_arg("rwkv_wkv_update", state);
  const Tensor w_t = tensor_arg(w, "w");
  const Tensor u_t = tensor_arg(u, "u");
  const Tensor k_t = tensor_arg(k, "k");
  const Tensor v_t = tensor_arg(v, "v");
  py::gil_scoped_release release;
  return rwkv_wkv_update(state_t, w_t, u_t, k_t, v_t);
}

}  // namespace

void bind_recurrent_ops(py::module_& ops) {
  const DtLimit no_limit{0.0, std::numeric_limits<double>::infinity()};
  ops.def("ssd_scan", &ssd, py::arg("x"), py::arg("dt"), py::arg("A"), py::arg("B"),
          py::arg("C"), py::arg("chunk_size") = 256, py::arg("D") = py::none(),
          py::arg("dt_bias") = py::none(), py::arg("dt_softplus") = false,
          py::arg("dt_limit") = no_limit, py::arg("initial_states") = py::none(),
          py::arg("return_final_states") = false, py::kw_only(), py::arg("out") = py::none(),
          R"doc(Mamba-2's chunked state-space-duality scan (transformers' torch_forward, mamba_ssm's
mamba_chunk_scan_combined without z), on the CPU or CUDA (the device of its tensors; on CUDA the
sequential recurrence, chunk_size unused).

x: [batch, L, H, P]; dt: [batch, L, H] (x's dtype: f32, f16 or bf16); A, D, dt_bias: [H];
B, C: [batch, L, G, N] with G dividing H; initial_states: [batch, H, P, N]. Per head, with
dt = clamp(softplus(dt + dt_bias), *dt_limit): S = exp(dt A) S + dt x B^T, y = S C + D x, computed
chunk_size steps at a time in float32. Returns y [batch, L, H, P] in x's dtype, and with
return_final_states the tuple (y, final_states [batch, H, P, N] f32).)doc");
  ops.def("ssd_state_update", &ssd_update, py::arg("state"), py::arg("x"), py::arg("dt"),
          py::arg("A"), py::arg("B"), py::arg("C"), py::arg("D") = py::none(),
          py::arg("dt_bias") = py::none(), py::arg("dt_softplus") = false,
          py::arg("dt_limit") = no_limit, py::kw_only(), py::arg("out") = py::none(),
          R"doc(One decode step of ssd_scan; updates `state` [batch, H, P, N] in place.

x: [batch, H, P]; dt: [batch, H]; A, D, dt_bias: [H]; B, C: [batch, G, N]. Returns y [batch, H, P]
in x's dtype. L calls on a sequence's steps equal one ssd_scan.)doc");
  ops.def("rms_norm_gated", &gated_norm, py::arg("x"), py::arg("weight"),
          py::arg("gate") = py::none(), py::arg("eps") = 1e-6, py::kw_only(),
          py::arg("group_size") = 0, py::arg("out") = py::none(),
          R"doc(Mamba-2's gated RMSNorm (MambaRMSNormGated): v = x * silu(gate), then
v / sqrt(mean(v^2) + eps) * weight over each group of group_size columns (0: the whole row, as
transformers; mamba_ssm groups d_inner / n_groups). Float32 statistics; x's dtype out.)doc");
  ops.def("rwkv_wkv", &wkv, py::arg("w"), py::arg("u"), py::arg("k"), py::arg("v"),
          py::arg("state") = py::none(), py::kw_only(), py::arg("mask") = py::none(),
          py::arg("out") = py::none(),
          R"doc(RWKV-4's WKV time-mix recurrence, as transformers' rwkv_linear_attention_cpu, on the
CPU or CUDA (the device of its tensors).

w: time_decay [C] as stored (each step decays by exp(-exp(w))); u: time_first [C]; k, v:
[batch, L, C] (one dtype: f32, f16 or bf16); state: None (empty) or (num, den, max), each
[batch, C]. mask [batch, L] (optional): a 0 skips that step (output 0, state unchanged). Returns
(y [batch, L, C] in k's dtype, (num, den, max) f32 [batch, C]) with the max-tracking form of the
state, so that no exponential overflows.)doc");
  ops.def("rwkv_wkv_update", &wkv_update, py::arg("state"), py::arg("w"), py::arg("u"),
          py::arg("k"), py::arg("v"),
          R"doc(One decode step of rwkv_wkv: k, v [batch, C]; state (num, den, max), contiguous
f32 [batch, C] each, updated in place. Returns y [batch, C]. L steps equal one rwkv_wkv.)doc");
}

}  // namespace hfport::python
