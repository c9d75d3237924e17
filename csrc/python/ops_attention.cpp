// hfport.ops.attention, rope_frequencies, rope_table and rope: the CPU kernels of
// kernels/cpu/attention.h and rope.h on any DLPack producer, read without a copy. Argument
// errors are the kernels' own (hfport.errors.Error, naming the argument and the expectation);
// the GIL is released while a kernel runs.
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "kernels/cpu/attention.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

// An optional tensor argument: None stays an undefined Tensor.
Tensor optional_tensor_arg(const py::object& value, const char* arg_name) {
  return value.is_none() ? Tensor() : tensor_arg(value, arg_name);
}

py::object attention_py(const py::object& q, const py::object& k, const py::object& v,
                        bool causal, std::optional<double> scale, const py::object& attn_mask,
                        const py::object& key_padding_mask, std::optional<int64_t> sliding_window,
                        const std::string& layout, bool return_lse) {
  const Tensor q_t = tensor_arg(q, "q");
  const Tensor k_t = tensor_arg(k, "k");
  const Tensor v_t = tensor_arg(v, "v");
  AttentionOptions options;
  options.causal = causal;
  options.scale = scale;
  options.attn_mask = optional_tensor_arg(attn_mask, "attn_mask");
  options.key_padding_mask = optional_tensor_arg(key_padding_mask, "key_padding_mask");
  options.sliding_window = sliding_window;
  options.layout = attention_layout_from_name(layout);
  options.return_lse = return_lse;
  AttentionResult result;
  {
    py::gil_scoped_release release;
    result = attention(q_t, k_t, v_t, options);
  }
  if (return_lse) return py::make_tuple(result.out, result.lse);
  return py::cast(result.out);
}

}  // namespace

void bind_attention_ops(py::module_& ops) {
  ops.def("attention", &attention_py, py::arg("q"), py::arg("k"), py::arg("v"), py::kw_only(),
          py::arg("causal") = false, py::arg("scale") = py::none(),
          py::arg("attn_mask") = py::none(), py::arg("key_padding_mask") = py::none(),
          py::arg("sliding_window") = py::none(), py::arg("layout") = "bhsd",
          py::arg("return_lse") = false,
          R"doc(Scaled dot-product attention, flash style, on the CPU.

q is [B, Hq, Sq, D] (layout="bhsd") or [B, Sq, Hq, D] ("bshd"); k and v have Hkv heads, which
must divide Hq (GQA/MQA), and Sk positions. With Sq != Sk the queries are the last Sq positions
(decode against a cache): causal masking and the sliding window use position i + Sk - Sq.
attn_mask: bool (True = attend) or float (added), broadcastable to [B, Hq, Sq, Sk].
key_padding_mask: [B, Sk], nonzero = keep (transformers' attention_mask).
sliding_window: a query at p sees keys in (p - window, p].
f32/f16/bf16 in, f32 accumulation, output in q's dtype and layout. A query that sees no key gets
zeros. Returns the output, or (output, logsumexp [B, Hq, Sq] f32) with return_lse=True.)doc");
}

}  // namespace hfport::python
