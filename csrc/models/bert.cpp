// BERT and RoBERTa encoders with their heads, native. See bert.h for the computation.
#include "models/bert.h"

#include "core/error.h"
#include "models/encoder_heads.h"
#include "models/encoder_layers.h"
#include "models/model_inputs.h"
#include "models/parameters.h"

namespace hfport::models {

namespace {

enum class Variant { Bert, Roberta };

class BertModel final : public Model {
 public:
  BertModel(Variant variant, nlohmann::json config, Parameters params, EncoderHead head)
      : variant_(variant),
        family_(variant == Variant::Bert ? "bert" : "roberta"),
        config_(std::move(config)),
        params_(std::move(params)),
        head_(head) {
    settings_ = encoder_settings(family_, config_);
    vocab_ = config_int(family_, config_, "vocab_size");
    positions_ = config_int(family_, config_, "max_position_embeddings");
    if (variant_ == Variant::Roberta) pad_ = config_int(family_, config_, "pad_token_id");
    const int64_t n_layers = config_int(family_, config_, "num_hidden_layers");
    for (int64_t i = 0; i < n_layers; ++i) {
      layers_.push_back(PostNormBlock::from(params_, "blk." + std::to_string(i) + "."));
    }
    switch (head_) {
      case EncoderHead::Base:
        break;
      case EncoderHead::MaskedLm:
        // RobertaLMHead calls transformers' gelu (the exact one) whatever hidden_act says.
        mlm_ = MaskedLmHead::from(params_, variant_ == Variant::Bert ? settings_.act
                                                                     : GeluApproximation::None,
                                  settings_.eps);
        break;
      case EncoderHead::SequenceClassification:
        if (variant_ == Variant::Bert && params_.find("pooler.weight") == nullptr) {
          throw ConfigError("native bert model: the sequence_classification head classifies the "
                            "pooled output, but the checkpoint has no pooler (pooler.weight)");
        }
        classifier_ = ClassifierHead::from(params_, variant_ == Variant::Roberta);
        break;
      case EncoderHead::TokenClassification:
        classifier_ = ClassifierHead::from(params_, false);
        break;
    }
  }

  std::string family() const override { return family_; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    return forward_with_token_types(input_ids, Tensor(), attention_mask, output_hidden_states);
  }

  ModelOutput forward_with_token_types(const Tensor& input_ids, const Tensor& token_type_ids,
                                       const Tensor& attention_mask,
                                       bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(family_, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(family_, attention_mask, ids.shape());
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
    Tensor position_ids;
    if (variant_ == Variant::Bert) {
      if (seq > positions_) {
        throw ArgumentError("native bert model: " + std::to_string(seq) + " tokens but the model "
                            "has " + std::to_string(positions_) +
                            " learned positions (max_position_embeddings)");
      }
      position_ids = absolute_position_ids(batch, seq);
    } else {
      position_ids = roberta_position_ids(ids, pad_);
    }
    ModelOutput out;
    Tensor h = encoder_embeddings(family_, params_, ids, token_type_ids, position_ids, settings_.eps);
    if (output_hidden_states) out.hidden_states.push_back(h);
    for (const PostNormBlock& layer : layers_) {
      h = layer.forward(h, mask, settings_);
      if (output_hidden_states) out.hidden_states.push_back(h);
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
        out.logits = classifier_.forward_sequence(
            variant_ == Variant::Bert ? pooled_first_token(params_, h) : first_token(h));
        break;
      case EncoderHead::TokenClassification:
        out.logits = classifier_.forward_tokens(h);
        break;
    }
    return out;
  }

 private:
  Variant variant_;
  std::string family_;
  nlohmann::json config_;
  Parameters params_;
  EncoderHead head_;
  EncoderSettings settings_;
  std::vector<PostNormBlock> layers_;
  MaskedLmHead mlm_;
  ClassifierHead classifier_;
  int64_t vocab_ = 0, positions_ = 0, pad_ = 0;
};

}  // namespace

std::unique_ptr<Model> build_bert_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head) {
  const EncoderHead selected = encoder_head("bert", head);
  return std::make_unique<BertModel>(Variant::Bert, std::move(config),
                                     f32_parameters("bert", std::move(state)), selected);
}

std::unique_ptr<Model> build_roberta_model(nlohmann::json config,
                                           std::vector<std::pair<std::string, Tensor>> state,
                                           const std::string& head) {
  const EncoderHead selected = encoder_head("roberta", head);
  return std::make_unique<BertModel>(Variant::Roberta, std::move(config),
                                     f32_parameters("roberta", std::move(state)), selected);
}

}  // namespace hfport::models
