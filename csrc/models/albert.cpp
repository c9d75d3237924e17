// ALBERT encoder with its heads, native. See albert.h for the computation.
#include "models/albert.h"

#include "core/error.h"
#include "models/encoder_heads.h"
#include "models/encoder_layers.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/linear.h"

namespace hfport::models {

namespace {

const std::string kFamily = "albert";

class AlbertModel final : public Model {
 public:
  AlbertModel(nlohmann::json config, Parameters params, EncoderHead head)
      : config_(std::move(config)), params_(std::move(params)), head_(head) {
    settings_ = encoder_settings(kFamily, config_);
    vocab_ = config_int(kFamily, config_, "vocab_size");
    positions_ = config_int(kFamily, config_, "max_position_embeddings");
    layers_ = config_int(kFamily, config_, "num_hidden_layers");
    const int64_t groups = config_int(kFamily, config_, "num_hidden_groups");
    const int64_t inner = config_int(kFamily, config_, "inner_group_num");
    if (groups < 1 || inner < 1) {
      throw ConfigError("native albert model: num_hidden_groups (" + std::to_string(groups) +
                        ") and inner_group_num (" + std::to_string(inner) +
                        ") must both be at least 1");
    }
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<PostNormBlock> blocks;
      for (int64_t j = 0; j < inner; ++j) {
        blocks.push_back(PostNormBlock::from(
            params_, "grp." + std::to_string(g) + ".blk." + std::to_string(j) + "."));
      }
      groups_.push_back(std::move(blocks));
    }
    proj_w_ = params_.get("embd_proj.weight");
    proj_b_ = params_.get("embd_proj.bias");
    switch (head_) {
      case EncoderHead::Base:
        break;
      case EncoderHead::MaskedLm:
        mlm_ = MaskedLmHead::from(params_, settings_.act, settings_.eps);
        break;
      case EncoderHead::SequenceClassification:
        if (params_.find("pooler.weight") == nullptr) {
          throw ConfigError("native albert model: the sequence_classification head classifies "
                            "the pooled output, but the checkpoint has no pooler (pooler.weight)");
        }
        classifier_ = ClassifierHead::from(params_, false);
        break;
      case EncoderHead::TokenClassification:
        classifier_ = ClassifierHead::from(params_, false);
        break;
    }
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    return forward_with_token_types(input_ids, Tensor(), attention_mask, output_hidden_states);
  }

  ModelOutput forward_with_token_types(const Tensor& input_ids, const Tensor& token_type_ids,
                                       const Tensor& attention_mask,
                                       bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, ids.shape());
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
    if (seq > positions_) {
      throw ArgumentError("native albert model: " + std::to_string(seq) + " tokens but the model "
                          "has " + std::to_string(positions_) +
                          " learned positions (max_position_embeddings)");
    }
    ModelOutput out;
    const Tensor embedded = encoder_embeddings(
        kFamily, params_, ids, token_type_ids, absolute_position_ids(batch, seq), settings_.eps);
    Tensor h = linear(embedded, proj_w_, proj_b_);
    if (output_hidden_states) out.hidden_states.push_back(h);
    // AlbertTransformer's group index, with its float division (num_hidden_layers need not be a
    // multiple of num_hidden_groups).
    const double per_group =
        static_cast<double>(layers_) / static_cast<double>(groups_.size());
    for (int64_t i = 0; i < layers_; ++i) {
      const auto group = static_cast<size_t>(static_cast<double>(i) / per_group);
      if (group >= groups_.size()) {
        throw Error("native albert model: layer " + std::to_string(i) + " maps to group " +
                    std::to_string(group) + " of " + std::to_string(groups_.size()));
      }
      for (const PostNormBlock& block : groups_[group]) {
        h = block.forward(h, mask, settings_);
        if (output_hidden_states) out.hidden_states.push_back(h);
      }
    }
    out.last_hidden_state = h;
    switch (head_) {
      case EncoderHead::Base:
        out.pooled = pooled_first_token(params_, h);
        break;
      case EncoderHead::MaskedLm:
        out.logits = mlm_.forward(h);
        break;
      case EncoderHead::SequenceClassification:
        out.logits = classifier_.forward_sequence(pooled_first_token(params_, h));
        break;
      case EncoderHead::TokenClassification:
        out.logits = classifier_.forward_tokens(h);
        break;
    }
    return out;
  }

 private:
  nlohmann::json config_;
  Parameters params_;
  EncoderHead head_;
  EncoderSettings settings_;
  std::vector<std::vector<PostNormBlock>> groups_;
  Tensor proj_w_, proj_b_;
  MaskedLmHead mlm_;
  ClassifierHead classifier_;
  int64_t vocab_ = 0, positions_ = 0, layers_ = 0;
};

}  // namespace

std::unique_ptr<Model> build_albert_model(nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const std::string& head) {
  const EncoderHead selected = encoder_head(kFamily, head);
  return std::make_unique<AlbertModel>(std::move(config),
                                       f32_parameters(kFamily, std::move(state)), selected);
}

}  // namespace hfport::models
