// The LLaMA-family decoder; see llama.h.
#include "models/llama.h"
#include "models/decode_mask.h"
#include "models/decoder_head.h"
#include "models/model_inputs.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include "core/device_copy.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/storage.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"
#include "models/parameters.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope.h"
#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::models {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// config.json

int64_t positive_config_int(const json& config, const std::string& family, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
    throw ConfigError("native " + family + " model: config.json needs '" + key +
                      "' as a positive integer, got " +
                      (it == config.end() ? std::string("nothing") : it->dump()));
  }
  return it->get<int64_t>();
}

struct LlamaShape {
  int64_t hidden = 0, layers = 0, q_heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0;
  int64_t vocab = 0;
  double eps = 1e-6;
  std::vector<std::optional<int64_t>> window;  // per layer; nullopt: full attention
};

// The sliding window of each layer as transformers 5.x decides it: config.layer_types when the
// config has it (Qwen2/Qwen3 write it), else use_sliding_window with max_window_layers (older Qwen
// configs), else config.sliding_window on every layer (Mistral).
std::vector<std::optional<int64_t>> layer_windows(const json& config, const std::string& family,
                                                  int64_t layers) {
  std::optional<int64_t> window;
  if (auto it = config.find("sliding_window"); it != config.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
      throw ConfigError("native " + family + " model: config.json 'sliding_window' must be a "
                        "positive integer or null, got " + it->dump());
    }
    window = it->get<int64_t>();
  }
  std::vector<std::optional<int64_t>> out(static_cast<size_t>(layers));
  if (auto use = config.find("use_sliding_window");
      use != config.end() && use->is_boolean() && !use->get<bool>()) {
    window.reset();  // transformers: sliding_window = None unless use_sliding_window
  }
  if (auto types = config.find("layer_types"); types != config.end() && !types->is_null()) {
    if (!types->is_array() || static_cast<int64_t>(types->size()) != layers) {
      throw ConfigError("native " + family + " model: config.json 'layer_types' must list " +
                        std::to_string(layers) + " layer types, got " + types->dump());
    }
    for (int64_t i = 0; i < layers; ++i) {
      const json& type = (*types)[static_cast<size_t>(i)];
      if (type == "sliding_attention") {
        if (!window) {
          throw ConfigError("native " + family + " model: layer_types[" + std::to_string(i) +
                            "] is 'sliding_attention' but config.json sets no sliding_window");
        }
        out[static_cast<size_t>(i)] = window;
      } else if (type != "full_attention") {
        throw ConfigError("native " + family + " model: layer_types[" + std::to_string(i) +
                          "] is " + type.dump() + "; expected 'full_attention' or "
                          "'sliding_attention'");
      }
    }
    return out;
  }
  int64_t first_sliding = 0;
  if (auto use = config.find("use_sliding_window"); use != config.end() && use->is_boolean()) {
    if (auto m = config.find("max_window_layers"); m != config.end() && m->is_number_integer()) {
      first_sliding = m->get<int64_t>();
    }
  }
  for (int64_t i = first_sliding; i < layers; ++i) out[static_cast<size_t>(i)] = window;
  return out;
}

LlamaShape read_shape(const json& config, const std::string& family) {
  LlamaShape s;
  s.hidden = positive_config_int(config, family, "hidden_size");
  s.layers = positive_config_int(config, family, "num_hidden_layers");
  s.q_heads = positive_config_int(config, family, "num_attention_heads");
  s.kv_heads = positive_config_int(config, family, "num_key_value_heads");
  s.head_dim = positive_config_int(config, family, "head_dim");
  s.intermediate = positive_config_int(config, family, "intermediate_size");
  s.vocab = positive_config_int(config, family, "vocab_size");
  if (s.q_heads % s.kv_heads != 0) {
    throw ConfigError("native " + family + " model: num_key_value_heads (" +
                      std::to_string(s.kv_heads) + ") must divide num_attention_heads (" +
                      std::to_string(s.q_heads) + ")");
  }
  if (auto it = config.find("rms_norm_eps"); it != config.end() && !it->is_null()) {
    if (!it->is_number()) {
      throw ConfigError("native " + family + " model: config.json 'rms_norm_eps' must be a "
                        "number, got " + it->dump());
    }
    s.eps = it->get<double>();
  }
  if (auto it = config.find("hidden_act"); it != config.end() && !it->is_null() &&
                                           *it != "silu" && *it != "swish") {
    throw ConfigError("native " + family + " model: hidden_act " + it->dump() +
                      " is not supported; the LLaMA family MLP computes silu(gate) * up");
  }
  s.window = layer_windows(config, family, s.layers);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Parameters

struct LlamaLayer {
  Tensor attn_norm, qkv_weight, qkv_bias, out_weight, out_bias;
  Tensor q_norm, k_norm;  // qwen3
  Tensor ffn_norm, gate_up_weight, gate_up_bias, down_weight, down_bias;
  std::optional<int64_t> window;
};

Tensor optional_param(const Parameters& params, const std::string& name) {
  const Tensor* t = params.find(name);
  return t ? *t : Tensor();
}

// ---------------------------------------------------------------------------------------------
// The cache: K and V after RoPE, per layer [batch, capacity, kv_heads, head_dim] ("bshd", so a
// step's k and v rows are appended with one strided copy per batch row and the attention kernel
// reads the filled prefix as a strided view). It lives on the model's device.

class LlamaCache final : public DecodeCache {
 public:
  LlamaCache(int64_t layers, int64_t batch, int64_t capacity, int64_t kv_heads, int64_t head_dim,
             DType dtype, Device device)
      : batch_(batch), kv_heads_(kv_heads), head_dim_(head_dim), dtype_(dtype), device_(device) {
    k_.resize(static_cast<size_t>(layers));
    v_.resize(static_cast<size_t>(layers));
    reserve(std::max<int64_t>(capacity, 1));
  }

  int64_t length() const override { return length_; }
  int64_t batch() const { return batch_; }

  // Room for `total` tokens, keeping the ones already there (capacity doubles when it grows).
  void reserve(int64_t total) {
    if (total <= capacity_) return;
    const int64_t capacity = std::max(total, 2 * capacity_);
    for (std::vector<Tensor>* side : {&k_, &v_}) {
      for (Tensor& t : *side) {
        Tensor grown = Tensor::empty(dtype_, {batch_, capacity, kv_heads_, head_dim_}, device_);
        if (t.defined() && length_ > 0) {
          for (int64_t b = 0; b < batch_; ++b) {
            copy_into(t.select(0, b).slice(0, 0, length_), grown.select(0, b).slice(0, 0, length_));
          }
        }
        t = std::move(grown);
      }
    }
    capacity_ = capacity;
  }

  // Writes the bshd views k_new, v_new [batch, n, kv_heads, head_dim] at [length, length + n)
  // of `layer` and returns the filled prefix [batch, length + n, kv_heads, head_dim] of each.
  std::pair<Tensor, Tensor> append(int64_t layer, const Tensor& k_new, const Tensor& v_new) {
    const int64_t n = k_new.shape()[1];
    for (int64_t b = 0; b < batch_; ++b) {
      copy_into(k_new.select(0, b), k_[static_cast<size_t>(layer)].select(0, b).slice(0, length_, length_ + n));
      copy_into(v_new.select(0, b), v_[static_cast<size_t>(layer)].select(0, b).slice(0, length_, length_ + n));
    }
    return {k_[static_cast<size_t>(layer)].slice(1, 0, length_ + n),
            v_[static_cast<size_t>(layer)].slice(1, 0, length_ + n)};
  }

  void advance(int64_t n) { length_ += n; }

 private:
  int64_t batch_, kv_heads_, head_dim_;
  DType dtype_;
  Device device_;
  int64_t capacity_ = 0, length_ = 0;
  std::vector<Tensor> k_, v_;
};

// ---------------------------------------------------------------------------------------------
// The one element-wise step the kernels do not have in this form: silu(gate) * up where gate and
// up are the two halves of each row of the fused gate_up output [rows, 2 I]. swiglu(gate, up)
// would first copy both strided halves to contiguous tensors; this reads them in place.

template <typename E>
void swiglu_halves(const Tensor& gate_up, const Tensor& out, int64_t rows, int64_t width) {
  using T = typename E::Stored;
  const T* in = gate_up.data_as<T>();
  T* dst = out.data_as<T>();
  parallel_for(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r) {
                   const T* gate = in + r * 2 * width;
                   const T* up = gate + width;
                   T* o = dst + r * width;
                   for (int64_t i = 0; i < width; ++i) {
                     o[i] = E::store(silu_vectorizable(E::load(gate[i])) * E::load(up[i]));
                   }
                 }
               });
}

// ---------------------------------------------------------------------------------------------
// The model

class LlamaModel final : public Model {
 public:
  LlamaModel(std::string family, json config, std::vector<std::pair<std::string, Tensor>> state,
             const Device& device, const std::string& head)
      : family_(std::move(family)), config_(std::move(config)),
        shape_(read_shape(config_, family_)), rope_(rope_config_from_json(config_)),
        device_(device) {
    const Parameters params(family_, std::move(state));
    tok_embd_ = params.get("tok_embd.weight");
    output_norm_ = params.get("output_norm.weight");
    head_ = DecoderHead(family_, head, params, config_);
    dtype_ = tok_embd_.dtype();
    if (dtype_ != DType::F32 && dtype_ != DType::F16 && dtype_ != DType::BF16) {
      throw Error("native " + family_ + " model: parameters must be F32, F16 or BF16, got " +
                  std::string(dtype_name(dtype_)));
    }
    if (!tok_embd_.is_contiguous()) tok_embd_ = tok_embd_.contiguous();
    for (int64_t i = 0; i < shape_.layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      LlamaLayer layer;
      layer.attn_norm = params.get(p + "attn_norm.weight");
      layer.qkv_weight = params.get(p + "attn_qkv.weight");
      layer.qkv_bias = optional_param(params, p + "attn_qkv.bias");
      layer.out_weight = params.get(p + "attn_out.weight");
      layer.out_bias = optional_param(params, p + "attn_out.bias");
      layer.q_norm = optional_param(params, p + "attn_q_norm.weight");
      layer.k_norm = optional_param(params, p + "attn_k_norm.weight");
      if (layer.q_norm.defined() != layer.k_norm.defined()) {
        throw Error("native " + family_ + " model: layer " + std::to_string(i) + " has only one "
                    "of attn_q_norm / attn_k_norm");
      }
      layer.ffn_norm = params.get(p + "ffn_norm.weight");
      layer.gate_up_weight = params.get(p + "ffn_gate_up.weight");
      layer.gate_up_bias = optional_param(params, p + "ffn_gate_up.bias");
      layer.down_weight = params.get(p + "ffn_down.weight");
      layer.down_bias = optional_param(params, p + "ffn_down.bias");
      layer.window = shape_.window[static_cast<size_t>(i)];
      layers_.push_back(std::move(layer));
    }
    place_on_device();
  }

  std::string family() const override { return family_; }
  const json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(family_, input_ids, shape_.vocab);
    const Tensor mask = checked_attention_mask(family_, attention_mask, ids.shape());
    ModelOutput out;
    const Tensor hidden = run(ids, mask, arange_positions(0, ids.shape()[1]), nullptr,
                              output_hidden_states ? &out.hidden_states : nullptr);
    head_.apply(hidden, ids, out);
    return out;
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t batch, int64_t max_length) const override {
    if (batch <= 0 || max_length < 0) {
      throw Error("native " + family_ + " model: a cache needs batch >= 1 and max_length >= 0, "
                  "got batch " + std::to_string(batch) + ", max_length " +
                  std::to_string(max_length));
    }
    return std::make_unique<LlamaCache>(shape_.layers, batch, max_length, shape_.kv_heads,
                                        shape_.head_dim, dtype_, device_);
  }

  Tensor forward_cached(const Tensor& input_ids, const Tensor& attention_mask,
                        DecodeCache& cache) override {
    const Tensor ids = checked_token_ids(family_, input_ids, shape_.vocab);
    LlamaCache* llama_cache = &own_cache<LlamaCache>(family_, cache, ids.shape()[0]);
    const int64_t past = llama_cache->length(), seq = ids.shape()[1];
    // With a mask, the keys it pads are masked and positions are generate's (decode_mask.h).
    const Tensor mask = checked_decode_mask(family_, attention_mask, ids.shape()[0], past, seq);
    const Tensor positions =
        mask.defined() ? decode_positions(mask, seq) : arange_positions(past, seq);
    return head_.lm_logits(run(ids, mask, positions, llama_cache, nullptr));
  }

 private:
  // The parameters are prepared on the host (as loaded) and moved to the model's device once.
  void place_on_device() {
    std::vector<Tensor*> tensors = head_.tensors();
    tensors.push_back(&tok_embd_);
    tensors.push_back(&output_norm_);
    for (LlamaLayer& layer : layers_) {
      for (Tensor* t : {&layer.attn_norm, &layer.qkv_weight, &layer.qkv_bias, &layer.out_weight,
                        &layer.out_bias, &layer.q_norm, &layer.k_norm, &layer.ffn_norm,
                        &layer.gate_up_weight, &layer.gate_up_bias, &layer.down_weight,
                        &layer.down_bias}) {
        tensors.push_back(t);
      }
    }
    move_parameters(tensors, device_);
  }

  // silu(gate) * up over the halves of gate_up into act, on the model's device.
  void swiglu_into(const Tensor& gate_up, const Tensor& act, int64_t rows) const {
    if (device_.type == DeviceType::CUDA) {
#ifdef HFPORT_WITH_CUDA
      cuda::CurrentDevice current(device_);
      cuda::SwigluHalvesParams p;
      p.rows = rows;
      p.width = shape_.intermediate;
      p.dtype = dtype_;
      p.gate_up = gate_up.data();
      p.out = act.data();
      cuda::swiglu_halves(p, cuda::op_stream());
      return;
#endif
    }
    dispatch_float(dtype_, [&](auto tag) {
      swiglu_halves<decltype(tag)>(gate_up, act, rows, shape_.intermediate);
    });
  }

  // past, past + 1, ..., past + seq - 1: the positions of a plain forward (see llama.h).
  static Tensor arange_positions(int64_t past, int64_t seq) {
    Tensor positions = Tensor::empty(DType::I64, {seq});
    for (int64_t s = 0; s < seq; ++s) positions.data_as<int64_t>()[s] = past + s;
    return positions;
  }

  // The forward pass over `ids` [batch, seq], after the tokens in `cache` when there is one
  // (appending to it). `key_padding`: undefined or [batch, cached + seq] U8 on the host;
  // `positions`: [seq] or [batch, seq] I64 on the host. Returns the final norm's output
  // [batch, seq, hidden], which the head reads; fills `hidden` when given.
  Tensor run(const Tensor& ids, const Tensor& key_padding, const Tensor& positions,
             LlamaCache* cache, std::vector<Tensor>* hidden) {
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
    const int64_t past = cache ? cache->length() : 0;
    const int64_t hq = shape_.q_heads, hkv = shape_.kv_heads, d = shape_.head_dim;
    const int64_t qkv_heads = hq + 2 * hkv;
    if (cache) cache->reserve(past + seq);

    // cos / sin [seq, W] or [batch, seq, W]: computed on the host, then moved.
    RopeTable table = rope_table(rope_, positions);
    table.cos = to_device(table.cos, device_);
    table.sin = to_device(table.sin, device_);

    // Buffers every layer reuses. The residual stream x is a fresh tensor per block (the norm's
    // fused add writes it), so hidden_states can keep each one without a copy.
    Tensor x = embedding_rows(tok_embd_, ids);
    Tensor h = Tensor::empty(dtype_, {batch, seq, shape_.hidden}, device_);
    Tensor branch = Tensor::empty(dtype_, {batch, seq, shape_.hidden}, device_);
    Tensor qkv = Tensor::empty(dtype_, {batch, seq, qkv_heads * d}, device_);
    Tensor gate_up = Tensor::empty(dtype_, {batch, seq, 2 * shape_.intermediate}, device_);
    Tensor act = Tensor::empty(dtype_, {batch, seq, shape_.intermediate}, device_);
    const Tensor qkv_bshd = qkv.view({batch, seq, qkv_heads, d});
    bool branch_pending = false;  // branch holds an output not yet added to x

    AttentionOptions attn;
    attn.causal = true;
    attn.layout = AttentionLayout::BSHD;
    attn.key_padding_mask = key_padding.defined() ? to_device(key_padding, device_) : Tensor();
    RopeOptions rope_options;
    rope_options.inplace = true;
    rope_options.layout = AttentionLayout::BSHD;

    // h = rms_norm(x + branch) and x = x + branch when a branch is pending, else h = rms_norm(x).
    auto norm_into_h = [&](const Tensor& weight) {
      RmsNormOptions o;
      o.out = h;
      if (branch_pending) o.residual = x;
      RmsNormResult r = rms_norm(branch_pending ? branch : x, weight, shape_.eps, o);
      if (branch_pending) x = std::move(r.residual_sum);
      branch_pending = false;
    };

    if (hidden) hidden->push_back(x);
    for (int64_t l = 0; l < shape_.layers; ++l) {
      const LlamaLayer& layer = layers_[static_cast<size_t>(l)];
      norm_into_h(layer.attn_norm);
      if (hidden && l > 0) hidden->push_back(x);

      linear(h, layer.qkv_weight, layer.qkv_bias, qkv);
      Tensor q = qkv_bshd.slice(2, 0, hq);
      Tensor k = qkv_bshd.slice(2, hq, hq + hkv);
      Tensor v = qkv_bshd.slice(2, hq + hkv, qkv_heads);
      if (layer.q_norm.defined()) {
        q = rms_norm(q, layer.q_norm, shape_.eps).out;
        k = rms_norm(k, layer.k_norm, shape_.eps).out;
      }
      rope(q, k, table.cos, table.sin, rope_options);
      if (cache) std::tie(k, v) = cache->append(l, k, v);
      attn.sliding_window = layer.window;
      const Tensor a = attention(q, k, v, attn).out;  // [batch, seq, hq, d], contiguous
      linear(a.view({batch, seq, hq * d}), layer.out_weight, layer.out_bias, branch);
      branch_pending = true;

      norm_into_h(layer.ffn_norm);
      linear(h, layer.gate_up_weight, layer.gate_up_bias, gate_up);
      swiglu_into(gate_up, act, batch * seq);
      linear(act, layer.down_weight, layer.down_bias, branch);
      branch_pending = true;
    }
    norm_into_h(output_norm_);
    if (hidden) hidden->push_back(h);
    if (cache) cache->advance(seq);
    return h;
  }

  std::string family_;
  json config_;
  LlamaShape shape_;
  RopeConfig rope_;
  Device device_;
  DType dtype_ = DType::F32;
  Tensor tok_embd_, output_norm_;
  DecoderHead head_;
  std::vector<LlamaLayer> layers_;
};

}  // namespace

std::unique_ptr<Model> build_llama_family(const std::string& family, json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const Device& device, const std::string& head) {
  return std::make_unique<LlamaModel>(family, std::move(config), std::move(state), device, head);
}

ModelBuilder llama_family_builder(std::string family) {
  return [family = std::move(family)](json config,
                                      std::vector<std::pair<std::string, Tensor>> state,
                                      const Device& device, const std::string& head) {
    return build_llama_family(family, std::move(config), std::move(state), device, head);
  };
}

}  // namespace hfport::models
