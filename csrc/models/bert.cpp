// BERT encoder, native. See bert.h for the computation.
#include "models/bert.h"

#include <cstring>

#include "core/error.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace hfport::models {

namespace {

const std::string kFamily = "bert";

struct BertLayer {
  Tensor qkv_w, qkv_b, out_w, out_b, attn_norm_w, attn_norm_b;
  Tensor up_w, up_b, down_w, down_b, ffn_norm_w, ffn_norm_b;
};

class BertModel final : public Model {
 public:
  BertModel(nlohmann::json config, Parameters params)
      : config_(std::move(config)), params_(std::move(params)) {
    hidden_ = config_int(kFamily, config_, "hidden_size");
    heads_ = config_int(kFamily, config_, "num_attention_heads");
    if (heads_ <= 0 || hidden_ % heads_ != 0) {
      throw ConfigError("native bert model: hidden_size " + std::to_string(hidden_) +
                        " is not a multiple of num_attention_heads " + std::to_string(heads_));
    }
    vocab_ = config_int(kFamily, config_, "vocab_size");
    positions_ = config_int(kFamily, config_, "max_position_embeddings");
    eps_ = config_number(kFamily, config_, "layer_norm_eps", 1e-12);
    const std::string position_type =
        config_.value("position_embedding_type", std::string("absolute"));
    if (position_type != "absolute") {
      throw ConfigError("native bert model: position_embedding_type '" + position_type +
                        "' is not supported (absolute only, as transformers 5's BertModel)");
    }
    const std::string act = config_.value("hidden_act", std::string("gelu"));
    if (act == "gelu") {
      gelu_ = GeluApproximation::None;
    } else if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
      gelu_ = GeluApproximation::Tanh;
    } else {
      throw ConfigError("native bert model: hidden_act '" + act + "' is not supported (gelu, "
                        "gelu_new, gelu_pytorch_tanh)");
    }
    const int64_t n_layers = config_int(kFamily, config_, "num_hidden_layers");
    for (int64_t i = 0; i < n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      BertLayer layer;
      layer.qkv_w = params_.get(p + "attn_qkv.weight");
      layer.qkv_b = params_.get(p + "attn_qkv.bias");
      layer.out_w = params_.get(p + "attn_out.weight");
      layer.out_b = params_.get(p + "attn_out.bias");
      layer.attn_norm_w = params_.get(p + "attn_out_norm.weight");
      layer.attn_norm_b = params_.get(p + "attn_out_norm.bias");
      layer.up_w = params_.get(p + "ffn_up.weight");
      layer.up_b = params_.get(p + "ffn_up.bias");
      layer.down_w = params_.get(p + "ffn_down.weight");
      layer.down_b = params_.get(p + "ffn_down.bias");
      layer.ffn_norm_w = params_.get(p + "ffn_out_norm.weight");
      layer.ffn_norm_b = params_.get(p + "ffn_out_norm.bias");
      layers_.push_back(std::move(layer));
    }
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, ids.shape());
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
    if (seq > positions_) {
      throw ArgumentError("native bert model: " + std::to_string(seq) + " tokens but the model "
                          "has " + std::to_string(positions_) +
                          " learned positions (max_position_embeddings)");
    }
    ModelOutput out;
    Tensor h = layer_norm(embeddings(ids), params_.get("embd_norm.weight"),
                          params_.get("embd_norm.bias"), eps_);
    if (output_hidden_states) out.hidden_states.push_back(h);
    const int64_t head_dim = hidden_ / heads_;
    const Shape bshd = {batch, seq, heads_, head_dim};
    const Shape strides = {seq * 3 * hidden_, 3 * hidden_, head_dim, 1};
    AttentionOptions options;
    options.layout = AttentionLayout::BSHD;
    options.key_padding_mask = mask;
    for (const BertLayer& layer : layers_) {
      const Tensor qkv = linear(h, layer.qkv_w, layer.qkv_b);
      const auto part = [&](int64_t which) {
        return Tensor(qkv.storage(), qkv.byte_offset() + static_cast<size_t>(which * hidden_) * 4,
                      DType::F32, bshd, strides);
      };
      const Tensor context =
          attention(part(0), part(1), part(2), options).out.view({batch, seq, hidden_});
      Tensor a = linear(context, layer.out_w, layer.out_b);
      add_inplace(a, h);
      h = layer_norm(a, layer.attn_norm_w, layer.attn_norm_b, eps_);
      Tensor f = linear(gelu(linear(h, layer.up_w, layer.up_b), gelu_), layer.down_w, layer.down_b);
      add_inplace(f, h);
      h = layer_norm(f, layer.ffn_norm_w, layer.ffn_norm_b, eps_);
      if (output_hidden_states) out.hidden_states.push_back(h);
    }
    out.logits = h;
    const Tensor* pool_w = params_.find("pooler.weight");
    const Tensor* pool_b = params_.find("pooler.bias");
    if (pool_w != nullptr) {
      const Tensor first = h.select(1, 0).contiguous();  // [batch, hidden]
      out.pooled = linear(first, *pool_w, pool_b ? *pool_b : Tensor());
      tanh_inplace(out.pooled);
    }
    return out;
  }

 private:
  // (word + type 0) + position, in BertEmbeddings' order of additions.
  Tensor embeddings(const Tensor& ids) const {
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
    Tensor x = embedding_rows(params_.get("tok_embd.weight"), ids);
    const Tensor types = params_.get("type_embd.weight").contiguous();
    const Tensor positions = params_.get("pos_embd.weight").contiguous();
    const float* type0 = types.data_as<float>();
    const float* pos = positions.data_as<float>();
    float* data = x.data_as<float>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < seq; ++s) {
        float* row = data + (b * seq + s) * hidden_;
        const float* p = pos + s * hidden_;
        for (int64_t c = 0; c < hidden_; ++c) row[c] = (row[c] + type0[c]) + p[c];
      }
    }
    return x;
  }

  nlohmann::json config_;
  Parameters params_;
  std::vector<BertLayer> layers_;
  int64_t hidden_ = 0, heads_ = 0, vocab_ = 0, positions_ = 0;
  double eps_ = 1e-12;
  GeluApproximation gelu_ = GeluApproximation::None;
};

}  // namespace

std::unique_ptr<Model> build_bert_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head) {
  require_head(kFamily, head, {""});
  return std::make_unique<BertModel>(std::move(config), f32_parameters(kFamily, std::move(state)));
}

}  // namespace hfport::models
