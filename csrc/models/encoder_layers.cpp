// The embeddings and block BERT-like encoders share. See encoder_layers.h.
#include "models/encoder_layers.h"

#include "core/error.h"
#include "models/model_inputs.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace hfport::models {

GeluApproximation encoder_activation(const std::string& family, const std::string& field,
                                     const std::string& name) {
  if (name == "gelu") return GeluApproximation::None;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return GeluApproximation::Tanh;
  throw ConfigError("native " + family + " model: " + field + " '" + name +
                    "' is not supported (gelu, gelu_new, gelu_pytorch_tanh)");
}

EncoderSettings encoder_settings(const std::string& family, const nlohmann::json& config) {
  EncoderSettings s;
  s.hidden = config_int(family, config, "hidden_size");
  s.heads = config_int(family, config, "num_attention_heads");
  if (s.heads <= 0 || s.hidden % s.heads != 0) {
    throw ConfigError("native " + family + " model: hidden_size " + std::to_string(s.hidden) +
                      " is not a multiple of num_attention_heads " + std::to_string(s.heads));
  }
  s.eps = config_number(family, config, "layer_norm_eps", 1e-12);
  const std::string position_type = config.value("position_embedding_type", std::string("absolute"));
  if (position_type != "absolute") {
    throw ConfigError("native " + family + " model: position_embedding_type '" + position_type +
                      "' is not supported (absolute only, as transformers 5 runs it)");
  }
  if (config_bool(family, config, "is_decoder", false)) {
    throw ConfigError("native " + family + " model: config.json sets is_decoder (a causal decoder "
                      "such as BertLMHeadModel or RobertaForCausalLM), but the native encoder "
                      "attends both ways; run it in transformers");
  }
  const auto act = config.find("hidden_act");
  if (act != config.end() && !act->is_string()) {
    throw ConfigError("native " + family + " model: hidden_act must be an activation name, got " +
                      act->dump());
  }
  s.act = encoder_activation(family, "hidden_act",
                             act == config.end() ? std::string("gelu") : act->get<std::string>());
  return s;
}

Tensor absolute_position_ids(int64_t batch, int64_t seq) {
  Tensor positions = Tensor::empty(DType::I64, {batch, seq});
  int64_t* p = positions.data_as<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < seq; ++s) p[b * seq + s] = s;
  }
  return positions;
}

Tensor roberta_position_ids(const Tensor& ids, int64_t padding_idx) {
  const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
  Tensor positions = Tensor::empty(DType::I64, {batch, seq});
  const int64_t* id = ids.data_as<int64_t>();
  int64_t* p = positions.data_as<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t tokens = 0;
    for (int64_t s = 0; s < seq; ++s) {
      const bool real = id[b * seq + s] != padding_idx;
      tokens += real ? 1 : 0;
      p[b * seq + s] = real ? padding_idx + tokens : padding_idx;
    }
  }
  return positions;
}

Tensor encoder_embeddings(const std::string& family, const Parameters& params, const Tensor& ids,
                          const Tensor& token_type_ids, const Tensor& position_ids, double eps) {
  const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
  const Tensor types = params.get("type_embd.weight").contiguous();
  const Tensor type_ids = checked_token_type_ids(family, token_type_ids, ids.shape(),
                                                 types.shape()[0]);
  Tensor x = embedding_rows(params.get("tok_embd.weight"), ids);
  const int64_t width = x.shape()[2];
  const Tensor table = params.get("pos_embd.weight").contiguous();
  const int64_t rows = table.shape()[0];
  const float* type_rows = types.data_as<float>();
  const int64_t* type_of = type_ids.defined() ? type_ids.data_as<int64_t>() : nullptr;
  const float* pos = table.data_as<float>();
  const int64_t* position = position_ids.data_as<int64_t>();
  float* data = x.data_as<float>();
  for (int64_t i = 0; i < batch * seq; ++i) {
    if (position[i] < 0 || position[i] >= rows) {
      throw ArgumentError("native " + family + " model: position id " +
                          std::to_string(position[i]) + " of token [" + std::to_string(i / seq) +
                          ", " + std::to_string(i % seq) + "] is outside the " +
                          std::to_string(rows) + " learned positions (max_position_embeddings)");
    }
    float* row = data + i * width;
    const float* t = type_rows + (type_of != nullptr ? type_of[i] : 0) * width;
    const float* p = pos + position[i] * width;
    for (int64_t c = 0; c < width; ++c) row[c] = (row[c] + t[c]) + p[c];
  }
  return layer_norm(x, params.get("embd_norm.weight"), params.get("embd_norm.bias"), eps);
}

PostNormBlock PostNormBlock::from(const Parameters& params, const std::string& prefix) {
  PostNormBlock b;
  b.qkv_w = params.get(prefix + "attn_qkv.weight");
  b.qkv_b = params.get(prefix + "attn_qkv.bias");
  b.out_w = params.get(prefix + "attn_out.weight");
  b.out_b = params.get(prefix + "attn_out.bias");
  b.attn_norm_w = params.get(prefix + "attn_out_norm.weight");
  b.attn_norm_b = params.get(prefix + "attn_out_norm.bias");
  b.up_w = params.get(prefix + "ffn_up.weight");
  b.up_b = params.get(prefix + "ffn_up.bias");
  b.down_w = params.get(prefix + "ffn_down.weight");
  b.down_b = params.get(prefix + "ffn_down.bias");
  b.ffn_norm_w = params.get(prefix + "ffn_out_norm.weight");
  b.ffn_norm_b = params.get(prefix + "ffn_out_norm.bias");
  return b;
}

Tensor PostNormBlock::forward(const Tensor& h, const Tensor& mask,
                              const EncoderSettings& settings) const {
  const int64_t batch = h.shape()[0], seq = h.shape()[1], hidden = settings.hidden;
  const Tensor qkv = linear(h, qkv_w, qkv_b);
  const auto part = [&](int64_t which) {
    return fused_projection_part(qkv, 3, which, settings.heads);
  };
  AttentionOptions options;
  options.layout = AttentionLayout::BSHD;
  options.key_padding_mask = mask;
  const Tensor context =
      attention(part(0), part(1), part(2), options).out.view({batch, seq, hidden});
  Tensor a = linear(context, out_w, out_b);
  add_inplace(a, h);
  const Tensor attended = layer_norm(a, attn_norm_w, attn_norm_b, settings.eps);
  Tensor f = linear(gelu(linear(attended, up_w, up_b), settings.act), down_w, down_b);
  add_inplace(f, attended);
  return layer_norm(f, ffn_norm_w, ffn_norm_b, settings.eps);
}

}  // namespace hfport::models
