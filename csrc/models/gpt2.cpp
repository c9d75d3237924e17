// GPT-2, native. See gpt2.h for the computation, positions and the cache.
#include "models/gpt2.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "models/decode_mask.h"
#include "models/decoder_head.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace hfport::models {

namespace {

const std::string kFamily = "gpt2";

// transformers' ACT2FN names that GPT-2 configs use, as the kernels compute them.
enum class Gpt2Activation { GeluTanh, GeluErf, Silu };

Gpt2Activation activation_from_config(const nlohmann::json& config) {
  const std::string name = config.value("activation_function", std::string("gelu_new"));
  // gelu_new, gelu_fast and gelu_pytorch_tanh are one formula (0.5 x (1 + tanh(sqrt(2/pi)
  // (x + 0.044715 x^3)))) written three ways; they differ by float rounding only.
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return Gpt2Activation::GeluTanh;
  }
  if (name == "gelu") return Gpt2Activation::GeluErf;
  if (name == "silu" || name == "swish") return Gpt2Activation::Silu;
  throw ConfigError("native gpt2 model: activation_function '" + name + "' is not supported "
                    "(gelu_new, gelu_fast, gelu_pytorch_tanh, gelu, silu)");
}

struct Gpt2Layer {
  Tensor attn_norm_w, attn_norm_b, qkv_w, qkv_b, out_w, out_b;
  Tensor ffn_norm_w, ffn_norm_b, up_w, up_b, down_w, down_b;
  double scale = 1.0;
};

class Gpt2Cache final : public DecodeCache {
 public:
  Gpt2Cache(int64_t layers, int64_t batch, int64_t capacity, int64_t heads, int64_t head_dim)
      : batch_(batch), heads_(heads), head_dim_(head_dim) {
    k_.resize(static_cast<size_t>(layers));
    v_.resize(static_cast<size_t>(layers));
    reserve(capacity);
  }
  int64_t length() const override { return length_; }
  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  const Tensor& k(size_t layer) const { return k_[layer]; }
  const Tensor& v(size_t layer) const { return v_[layer]; }
  void advance(int64_t steps) { length_ += steps; }

  // Room for `total` tokens, keeping the `length()` already there.
  void reserve(int64_t total) {
    if (total <= capacity_) return;
    for (std::vector<Tensor>* kv : {&k_, &v_}) {
      for (Tensor& t : *kv) {
        Tensor grown = Tensor::empty(DType::F32, {batch_, total, heads_, head_dim_});
        const size_t row = static_cast<size_t>(heads_ * head_dim_) * 4;
        for (int64_t b = 0; t.defined() && b < batch_; ++b) {
          std::memcpy(grown.data() + static_cast<size_t>(b * total) * row,
                      t.data() + static_cast<size_t>(b * capacity_) * row,
                      static_cast<size_t>(length_) * row);
        }
        t = std::move(grown);
      }
    }
    capacity_ = total;
  }

 private:
  int64_t batch_, heads_, head_dim_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
  std::vector<Tensor> k_, v_;
};

class Gpt2Model final : public Model {
 public:
  Gpt2Model(nlohmann::json config, Parameters params, const std::string& head)
      : config_(std::move(config)), params_(std::move(params)),
        head_(kFamily, head, params_, config_) {
    embd_ = config_int(kFamily, config_, "n_embd");
    heads_ = config_int(kFamily, config_, "n_head");
    if (heads_ <= 0 || embd_ % heads_ != 0) {
      throw ConfigError("native gpt2 model: n_embd " + std::to_string(embd_) +
                        " is not a multiple of n_head " + std::to_string(heads_));
    }
    head_dim_ = embd_ / heads_;
    vocab_ = config_int(kFamily, config_, "vocab_size");
    positions_ = config_int(kFamily, config_, "n_positions");
    eps_ = config_number(kFamily, config_, "layer_norm_epsilon", 1e-5);
    activation_ = activation_from_config(config_);
    const bool scale_weights = config_bool(kFamily, config_, "scale_attn_weights", true);
    const bool by_layer = config_bool(kFamily, config_, "scale_attn_by_inverse_layer_idx", false);
    const int64_t n_layers = config_int(kFamily, config_, "n_layer");
    for (int64_t i = 0; i < n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      Gpt2Layer layer;
      layer.attn_norm_w = params_.get(p + "attn_norm.weight");
      layer.attn_norm_b = params_.get(p + "attn_norm.bias");
      layer.qkv_w = params_.get(p + "attn_qkv.weight");
      layer.qkv_b = params_.get(p + "attn_qkv.bias");
      layer.out_w = params_.get(p + "attn_out.weight");
      layer.out_b = params_.get(p + "attn_out.bias");
      layer.ffn_norm_w = params_.get(p + "ffn_norm.weight");
      layer.ffn_norm_b = params_.get(p + "ffn_norm.bias");
      layer.up_w = params_.get(p + "ffn_up.weight");
      layer.up_b = params_.get(p + "ffn_up.bias");
      layer.down_w = params_.get(p + "ffn_down.weight");
      layer.down_b = params_.get(p + "ffn_down.bias");
      // GPT2Attention.scaling, in the same float order.
      layer.scale = scale_weights ? std::pow(static_cast<double>(head_dim_), -0.5) : 1.0;
      if (by_layer) layer.scale /= static_cast<double>(i + 1);
      layers_.push_back(std::move(layer));
    }
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, ids.shape());
    check_positions(0, ids.shape()[1]);
    ModelOutput out = run(ids, mask, Tensor(), nullptr, output_hidden_states);
    head_.apply(out.last_hidden_state, ids, out);
    return out;
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t batch, int64_t max_length) const override {
    if (batch < 1 || max_length < 1) {
      throw ArgumentError("native gpt2 model: a cache needs batch >= 1 and max_length >= 1, got " +
                          std::to_string(batch) + " and " + std::to_string(max_length));
    }
    check_positions(0, max_length);
    return std::make_unique<Gpt2Cache>(static_cast<int64_t>(layers_.size()), batch, max_length,
                                       heads_, head_dim_);
  }

  Tensor forward_cached(const Tensor& input_ids, const Tensor& attention_mask,
                        DecodeCache& cache) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    Gpt2Cache* gpt2_cache = &own_cache<Gpt2Cache>(kFamily, cache, ids.shape()[0]);
    const int64_t seq = ids.shape()[1];
    const int64_t total = gpt2_cache->length() + seq;
    check_positions(gpt2_cache->length(), seq);
    if (total > gpt2_cache->capacity()) {
      gpt2_cache->reserve(std::min(std::max(total, 2 * gpt2_cache->capacity()), positions_));
    }
    // With a mask, the keys it pads are masked and positions are generate's (decode_mask.h).
    const Tensor mask = checked_decode_mask(kFamily, attention_mask, ids.shape()[0],
                                            gpt2_cache->length(), seq);
    const Tensor positions = mask.defined() ? decode_positions(mask, seq) : Tensor();
    Tensor logits = head_.lm_logits(run(ids, mask, positions, gpt2_cache, false).last_hidden_state);
    gpt2_cache->advance(seq);
    return logits;
  }

 private:
  void check_positions(int64_t past, int64_t seq) const {
    if (past + seq > positions_) {
      throw ArgumentError("native gpt2 model: positions up to " + std::to_string(past + seq - 1) +
                          " but the model has " + std::to_string(positions_) +
                          " learned positions (n_positions)");
    }
  }

  Tensor activation(const Tensor& x) const {
    switch (activation_) {
      case Gpt2Activation::GeluTanh: return gelu(x, GeluApproximation::Tanh);
      case Gpt2Activation::GeluErf: return gelu(x, GeluApproximation::None);
      case Gpt2Activation::Silu: return silu(x);
    }
    return Tensor();
  }

  // `mask`: the key padding, [batch, cached + seq] U8 or undefined. `positions`: [batch, seq] I64
  // from the mask, or undefined for arange(seq) after the cached tokens.
  ModelOutput run(const Tensor& ids, const Tensor& mask, const Tensor& positions, Gpt2Cache* cache,
                  bool keep_hidden) {
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
    const int64_t past = cache ? cache->length() : 0;
    ModelOutput out;
    Tensor h = embedding_rows(params_.get("tok_embd.weight"), ids);
    {
      const Tensor pos = params_.get("pos_embd.weight").contiguous();
      float* x = h.data_as<float>();
      const float* table = pos.data_as<float>();
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t s = 0; s < seq; ++s) {
          float* row = x + (b * seq + s) * embd_;
          const int64_t position =
              positions.defined() ? positions.data_as<int64_t>()[b * seq + s] : past + s;
          const float* p = table + position * embd_;
          for (int64_t c = 0; c < embd_; ++c) row[c] += p[c];
        }
      }
    }
    if (keep_hidden) out.hidden_states.push_back(h);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Gpt2Layer& layer = layers_[i];
      const Tensor a = layer_norm(h, layer.attn_norm_w, layer.attn_norm_b, eps_);
      const Tensor qkv = linear(a, layer.qkv_w, layer.qkv_b);  // [batch, seq, 3 n_embd]
      const Tensor context = attend(qkv, layer, mask, cache, i);  // [batch, seq, n_embd]
      Tensor h1 = linear(context, layer.out_w, layer.out_b);
      add_inplace(h1, h);
      const Tensor m = layer_norm(h1, layer.ffn_norm_w, layer.ffn_norm_b, eps_);
      Tensor h2 = linear(activation(linear(m, layer.up_w, layer.up_b)), layer.down_w,
                         layer.down_b);
      add_inplace(h2, h1);
      h = std::move(h2);
      if (keep_hidden && i + 1 < layers_.size()) out.hidden_states.push_back(h);
    }
    h = layer_norm(h, params_.get("output_norm.weight"), params_.get("output_norm.bias"), eps_);
    if (keep_hidden) out.hidden_states.push_back(h);
    out.last_hidden_state = h;  // the head's input (decoder_head.h)
    return out;
  }

  // Causal attention of the q, k, v in `qkv`; with a cache, this call's k and v are appended and
  // the queries see every cached key.
  Tensor attend(const Tensor& qkv, const Gpt2Layer& layer, const Tensor& mask, Gpt2Cache* cache,
                size_t index) const {
    const int64_t batch = qkv.shape()[0], seq = qkv.shape()[1];
    const Shape bshd = {batch, seq, heads_, head_dim_};
    const Shape strides = {seq * 3 * embd_, 3 * embd_, head_dim_, 1};
    const auto part = [&](int64_t which) {
      return Tensor(qkv.storage(), qkv.byte_offset() + static_cast<size_t>(which * embd_) * 4,
                    DType::F32, bshd, strides);
    };
    AttentionOptions options;
    options.causal = true;
    options.scale = layer.scale;
    options.layout = AttentionLayout::BSHD;
    options.key_padding_mask = mask;
    if (cache == nullptr) {
      return attention(part(0), part(1), part(2), options).out.view({batch, seq, embd_});
    }
    const int64_t past = cache->length();
    const Tensor& k_cache = cache->k(index);
    const Tensor& v_cache = cache->v(index);
    const float* src = qkv.data_as<float>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < seq; ++s) {
        const float* row = src + (b * seq + s) * 3 * embd_;
        const int64_t slot = (b * cache->capacity() + past + s) * embd_;
        std::memcpy(k_cache.data_as<float>() + slot, row + embd_, static_cast<size_t>(embd_) * 4);
        std::memcpy(v_cache.data_as<float>() + slot, row + 2 * embd_,
                    static_cast<size_t>(embd_) * 4);
      }
    }
    const Tensor k = k_cache.slice(1, 0, past + seq);
    const Tensor v = v_cache.slice(1, 0, past + seq);
    return attention(part(0), k, v, options).out.view({batch, seq, embd_});
  }

  nlohmann::json config_;
  Parameters params_;
  DecoderHead head_;
  std::vector<Gpt2Layer> layers_;
  int64_t embd_ = 0, heads_ = 0, head_dim_ = 0, vocab_ = 0, positions_ = 0;
  double eps_ = 1e-5;
  Gpt2Activation activation_ = Gpt2Activation::GeluTanh;
};

}  // namespace

std::unique_ptr<Model> build_gpt2_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head) {
  return std::make_unique<Gpt2Model>(std::move(config), f32_parameters(kFamily, std::move(state)),
                                     head);
}

}  // namespace hfport::models
