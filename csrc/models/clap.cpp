// The native CLAP model: the HTSAT audio tower (models/htsat.h), the RoBERTa text tower, the
// projections and the logits. See clap.h.
#include "models/clap.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/encoder_heads.h"
#include "models/encoder_layers.h"
#include "models/htsat.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/activation.h"
#include "ops/linear.h"

namespace hfport::models {

namespace {

constexpr const char* kFamily = "clap";

// A tower's parameters, F32: those under `prefix` with it removed ("text.tok_embd.weight" ->
// "tok_embd.weight", the names models/encoder_layers.h reads).
Parameters tower(const std::vector<std::pair<std::string, Tensor>>& state,
                 const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor>> part;
  for (const auto& [name, t] : state) {
    if (name.rfind(prefix, 0) == 0) part.emplace_back(name.substr(prefix.size()), t);
  }
  return f32_parameters(kFamily, std::move(part));
}

Tensor projected(const Tensor& x, const Parameters& p, bool relu, GeluApproximation gelu_kind) {
  Tensor h = linear(x, p.get("proj1.weight"), p.get("proj1.bias"));
  if (relu) {
    float* d = h.data_as<float>();
    for (int64_t i = 0; i < h.numel(); ++i) d[i] = d[i] > 0.0f ? d[i] : 0.0f;
  } else {
    h = gelu(h, gelu_kind);
  }
  return linear(h, p.get("proj2.weight"), p.get("proj2.bias"));
}

// F.normalize(x, dim=-1): x / max(||x||, 1e-12), rows of [batch, dim].
Tensor normalized(const Tensor& x) {
  Tensor out = contiguous_copy(x);
  const int64_t rows = out.shape()[0], dim = out.shape()[1];
  float* d = out.data_as<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t c = 0; c < dim; ++c) sum += static_cast<double>(d[r * dim + c]) * d[r * dim + c];
    const float norm = std::max(static_cast<float>(std::sqrt(sum)), 1e-12f);
    for (int64_t c = 0; c < dim; ++c) d[r * dim + c] /= norm;
  }
  return out;
}

class ClapNativeModel final : public ClapModel {
 public:
  ClapNativeModel(nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state)
      : config_(std::move(config)),
        audio_(tower(state, "audio.")),
        text_(tower(state, "text.")),
        audio_encoder_(audio_config(config_), audio_) {
    const auto text_it = config_.find("text_config");
    const auto audio_it = config_.find("audio_config");
    if (text_it == config_.end() || !text_it->is_object() || audio_it == config_.end() ||
        !audio_it->is_object()) {
      throw ConfigError(std::string("native ") + kFamily + " model: config.json needs "
                        "text_config and audio_config objects");
    }
    text_config_ = *text_it;
    init_text();
    projection_act(*audio_it, "audio_config", audio_relu_, audio_gelu_);
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor&, const Tensor&, bool) override {
    throw ArgumentError(std::string("native ") + kFamily + " model: call get_text_features, "
                        "get_audio_features, or the forward with input_ids and input_features");
  }

  ClapTowerOutput text_features(const Tensor& input_ids, const Tensor& attention_mask,
                                bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, ids.shape());
    ClapTowerOutput out;
    Tensor h = encoder_embeddings(kFamily, text_, ids, Tensor(), roberta_position_ids(ids, pad_),
                                  text_settings_.eps);
    if (output_hidden_states) out.hidden_states.push_back(h);
    for (const PostNormBlock& layer : text_layers_) {
      h = layer.forward(h, mask, text_settings_);
      if (output_hidden_states) out.hidden_states.push_back(h);
    }
    out.last_hidden_state = h;
    out.pooler_output = pooled_first_token(text_, h);
    out.embeds = normalized(projected(out.pooler_output, text_, text_relu_, text_gelu_));
    return out;
  }

  ClapTowerOutput audio_features(const Tensor& input_features, const Tensor& is_longer,
                                 bool output_hidden_states) override {
    HtsatOutput tower = audio_encoder_.forward(input_features, is_longer, output_hidden_states);
    ClapTowerOutput out;
    out.last_hidden_state = tower.last_hidden_state;
    out.pooler_output = tower.pooler_output;
    out.hidden_states = std::move(tower.hidden_states);
    out.block_states = std::move(tower.block_states);
    out.embeds = normalized(projected(out.pooler_output, audio_, audio_relu_, audio_gelu_));
    return out;
  }

  ClapOutput forward_pair(const Tensor& input_ids, const Tensor& attention_mask,
                          const Tensor& input_features, const Tensor& is_longer,
                          bool output_hidden_states) override {
    ClapOutput out;
    out.audio = audio_features(input_features, is_longer, output_hidden_states);
    out.text = text_features(input_ids, attention_mask, output_hidden_states);
    out.audio_embeds = out.audio.embeds;
    out.text_embeds = out.text.embeds;
    out.logits_per_text = scaled(linear(out.text_embeds, out.audio_embeds), text_.get("logit_scale"));
    out.logits_per_audio = scaled(linear(out.audio_embeds, out.text_embeds),
                                  audio_.get("logit_scale"));
    return out;
  }

 private:
  static Tensor scaled(Tensor logits, const Tensor& log_scale) {
    const float scale = std::exp(log_scale.contiguous().data_as<float>()[0]);
    float* d = logits.data_as<float>();
    for (int64_t i = 0; i < logits.numel(); ++i) d[i] *= scale;
    return logits;
  }

  static void projection_act(const nlohmann::json& c, const char* section, bool& relu,
                             GeluApproximation& gelu_kind) {
    const auto it = c.find("projection_hidden_act");
    const std::string act = it != c.end() && it->is_string() ? it->get<std::string>() : "relu";
    relu = act == "relu";
    if (!relu) gelu_kind = encoder_activation(kFamily, std::string(section) + ".projection_hidden_act", act);
  }

  void init_text() {
    text_settings_ = encoder_settings(kFamily, text_config_);
    vocab_ = config_int(kFamily, text_config_, "vocab_size");
    const auto pad = text_config_.find("pad_token_id");
    pad_ = pad != text_config_.end() && pad->is_number_integer() ? pad->get<int64_t>() : 1;
    const int64_t layers = config_int(kFamily, text_config_, "num_hidden_layers");
    for (int64_t i = 0; i < layers; ++i) {
      text_layers_.push_back(PostNormBlock::from(text_, "blk." + std::to_string(i) + "."));
    }
    projection_act(text_config_, "text_config", text_relu_, text_gelu_);
  }

  // config.json's audio_config; ConfigError when there is none (checked before the encoder reads it).
  static const nlohmann::json& audio_config(const nlohmann::json& config) {
    const auto it = config.find("audio_config");
    if (it == config.end() || !it->is_object()) {
      throw ConfigError(std::string("native ") + kFamily + " model: config.json needs an "
                        "audio_config object");
    }
    return *it;
  }

  nlohmann::json config_, text_config_;
  Parameters audio_, text_;
  HtsatEncoder audio_encoder_;
  EncoderSettings text_settings_;
  std::vector<PostNormBlock> text_layers_;
  int64_t vocab_ = 0, pad_ = 1;
  bool text_relu_ = true, audio_relu_ = true;
  GeluApproximation text_gelu_ = GeluApproximation::None, audio_gelu_ = GeluApproximation::None;
};

}  // namespace

std::unique_ptr<Model> build_clap_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head) {
  require_head(kFamily, head, {""});
  return std::make_unique<ClapNativeModel>(std::move(config), std::move(state));
}

}  // namespace hfport::models
