// hfport.ops.attention, rope_frequencies, rope_table and rope: the ops of ops/attention.h and
// ops/rope.h on any DLPack producer, read without a copy. Argument
// errors are the kernels' own (hfport.errors.Error, naming the argument and the expectation);
// the GIL is released while a kernel runs.
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/attention.h"
#include "ops/rope.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

py::object attention_py(const DLPackArg& q, const DLPackArg& k, const DLPackArg& v,
                        bool causal, std::optional<double> scale, const DLPackArg& attn_mask,
                        const DLPackArg& key_padding_mask, std::optional<int64_t> sliding_window,
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

// A Python value as JSON, without a text round trip: json.dumps would write NaN and inf as
// tokens no JSON parser reads, so they stay numbers here and the reader that uses the field
// refuses them by name. `where` names the value in errors ("rope_scaling.factor").
nlohmann::json json_from_python(const py::handle& value, const std::string& where) {
  if (value.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) {
    try {
      return value.cast<int64_t>();
    } catch (const py::cast_error&) {
    }
    try {
      return value.cast<uint64_t>();
    } catch (const py::cast_error&) {
    }
    throw ConfigError("rope config: '" + where + "' is an integer beyond 64 bits");
  }
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::dict>(value)) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, item] : value.cast<py::dict>()) {
      // Integer keys (transformers' id2label) become strings, as json.dumps writes them.
      const bool integer_key = py::isinstance<py::int_>(key) && !py::isinstance<py::bool_>(key);
      if (!py::isinstance<py::str>(key) && !integer_key) {
        throw ConfigError("rope config: keys must be strings; '" + where + "' has the key " +
                          std::string(py::repr(key)));
      }
      const std::string name = py::str(key).cast<std::string>();
      object[name] = json_from_python(item, where.empty() ? name : where + "." + name);
    }
    return object;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    nlohmann::json array = nlohmann::json::array();
    size_t i = 0;
    for (const auto& item : value) {
      array.push_back(json_from_python(item, where + "[" + std::to_string(i++) + "]"));
    }
    return array;
  }
  throw ConfigError("rope config: '" + where + "' holds a " +
                    std::string(py::str(py::type::of(value).attr("__name__"))) +
                    ", which config.json cannot hold");
}

// A config as transformers gives it (a dict, or a PreTrainedConfig through to_dict()) as the
// JSON object rope_config_from_json reads.
RopeConfig rope_config_arg(const py::object& config) {
  py::object dict = config;
  if (!py::isinstance<py::dict>(config) && py::hasattr(config, "to_dict")) {
    dict = config.attr("to_dict")();
  }
  if (!py::isinstance<py::dict>(dict)) {
    throw ConfigError("rope config: expected a dict (config.json's contents) or a transformers "
                      "config, got " + std::string(py::str(py::type::of(config).attr("__name__"))));
  }
  return rope_config_from_json(json_from_python(dict, ""));
}

// positions: a DLPack integer tensor, or a sequence of ints.
Tensor positions_arg(const DLPackArg& positions) {
  if (py::isinstance<Tensor>(positions) || py::hasattr(positions, "__dlpack__")) {
    return tensor_arg(positions, "positions");
  }
  const auto values = positions.cast<std::vector<int64_t>>();
  Tensor out = Tensor::empty(DType::I64, {static_cast<int64_t>(values.size())});
  if (!values.empty()) std::memcpy(out.data(), values.data(), values.size() * sizeof(int64_t));
  return out;
}

py::tuple rope_frequencies_py(const py::object& config, std::optional<int64_t> seq_len) {
  const RopeFrequencies freqs = rope_frequencies(rope_config_arg(config), seq_len);
  Tensor inv = Tensor::empty(DType::F32, {static_cast<int64_t>(freqs.inv_freq.size())});
  std::memcpy(inv.data(), freqs.inv_freq.data(), freqs.inv_freq.size() * sizeof(float));
  return py::make_tuple(inv, static_cast<double>(freqs.attention_scaling));
}

py::tuple rope_table_py(const py::object& config, const DLPackArg& positions,
                        std::optional<int64_t> seq_len) {
  const RopeConfig parsed = rope_config_arg(config);
  const Tensor pos = positions_arg(positions);
  RopeTable table;
  {
    py::gil_scoped_release release;
    table = rope_table(parsed, pos, seq_len);
  }
  return py::make_tuple(table.cos, table.sin);
}

py::tuple rope_py(const DLPackArg& q, const DLPackArg& k, const DLPackArg& cos,
                  const DLPackArg& sin, bool interleaved, std::optional<int64_t> rotary_dim,
                  bool inplace, const std::string& layout) {
  const Tensor q_t = tensor_arg(q, "q");
  const Tensor k_t = optional_tensor_arg(k, "k");
  const Tensor cos_t = tensor_arg(cos, "cos");
  const Tensor sin_t = tensor_arg(sin, "sin");
  RopeOptions options;
  options.interleaved = interleaved;
  options.rotary_dim = rotary_dim;
  options.inplace = inplace;
  options.layout = attention_layout_from_name(layout);
  RopeResult result;
  {
    py::gil_scoped_release release;
    result = rope(q_t, k_t, cos_t, sin_t, options);
  }
  return py::make_tuple(result.q, result.k.defined() ? py::cast(result.k) : py::none());
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

  ops.def("rope_frequencies", &rope_frequencies_py, py::arg("config"), py::kw_only(),
          py::arg("seq_len") = py::none(),
          R"doc((inv_freq f32 [rotary_dim / 2], attention_scaling) as transformers' ROPE_INIT_FUNCTIONS
compute them, for rope_type default, linear, dynamic, yarn, longrope, llama3. config: config.json's
dict (rope_parameters or rope_scaling) or a transformers config. seq_len: the current length for
dynamic (default max_position_embeddings) and longrope (long factors past
original_max_position_embeddings).)doc");
  ops.def("rope_table", &rope_table_py, py::arg("config"), py::arg("positions"), py::kw_only(),
          py::arg("seq_len") = py::none(),
          R"doc((cos, sin), f32 [*positions.shape, rotary_dim], as transformers' rotary embedding
returns them: cat(freqs, freqs) times the attention scaling. positions: an integer tensor [S] or
[B, S] or a list of ints; seq_len defaults to max(positions) + 1 (dynamic and longrope).)doc");
  ops.def("rope_2d_table",
          [](int64_t grid_h, int64_t grid_w, int64_t head_dim, double theta) {
            const RopeTable table = rope_2d_table(grid_h, grid_w, head_dim, theta);
            return py::make_tuple(table.cos, table.sin);
          },
          py::arg("grid_h"), py::arg("grid_w"), py::arg("head_dim"), py::arg("theta") = 100.0,
          R"doc((cos, sin), f32 [grid_h * grid_w, head_dim]: DINOv3's axial RoPE table for a grid of
patches (row-major), as transformers' DINOv3ViTRopePositionEmbedding computes it at eval (its
position shift, jitter and rescale off): the patch centres in [-1, 1], head_dim / 4 frequencies
1 / theta^(4j / head_dim) per axis, y angles then x angles, written twice. Apply it with rope() to
the patch tokens only (the class and register tokens stay unrotated): rope(q[:, :, prefix:],
k[:, :, prefix:], cos, sin, inplace=True).)doc");
  ops.def("rope", &rope_py, py::arg("q"), py::arg("k"), py::arg("cos"), py::arg("sin"),
          py::kw_only(), py::arg("interleaved") = false, py::arg("rotary_dim") = py::none(),
          py::arg("inplace") = false, py::arg("layout") = "bhsd",
          R"doc(Rotary embedding of q and k: returns (q_out, k_out).

q, k: [B, H, S, D] (layout="bhsd") or [B, S, H, D] ("bshd"), head counts may differ, k may be None.
cos, sin: [S, W] or [B, S, W]; row s is position s of q and k (pass the rows of a decode step's own
positions). W = rotary_dim (transformers' cat layout; its first half is read) or rotary_dim / 2;
rotary_dim defaults to W and the features past it pass through. interleaved=False rotates
(x[i], x[i + R/2]) as transformers' rotate_half; True rotates (x[2i], x[2i+1]) as GPT-J.
inplace=True writes into q and k and returns them.)doc");
}

}  // namespace hfport::python
