// CLAP (transformers ClapModel), native: an HTSAT Swin audio tower and a RoBERTa text tower, each
// with its projection, and the audio-text similarity logits.
//
// Audio tower: the HTSAT Swin encoder (models/htsat.h), then audio_embeds =
// proj2(relu(proj1(pooler_output))), L2-normalised.
// Text tower (ClapTextModel: RoBERTa, models/encoder_layers.h): embeddings with RoBERTa's position
// ids, post-norm blocks with the key padding mask, pooler tanh(pooler(h[:, 0])); text_embeds =
// proj2(relu(proj1(pooler))), L2-normalised.
// logits_per_text = text_embeds audio_embeds^T exp(text.logit_scale); logits_per_audio =
// audio_embeds text_embeds^T exp(audio.logit_scale).
//
// hidden_states follow transformers: audio, htsat.h's; text, the embeddings then each layer.
// projection_hidden_act: relu (transformers' default) or a gelu. F32 on the host; a CUDA device is
// refused (models/registry.cpp).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

// One tower's outputs, as ClapModel.get_audio_features / get_text_features return them
// (BaseModelOutputWithPooling, whose pooler_output transformers 5 replaces by the normalised
// projection) plus the tower's own pooler output.
struct ClapTowerOutput {
  Tensor last_hidden_state;
  Tensor pooler_output;  // the tower's pooling, before the projection
  Tensor embeds;         // proj2(relu(proj1(pooler_output))) / max(||.||, 1e-12)   [batch, proj]
  std::vector<Tensor> hidden_states;
  std::vector<Tensor> block_states;  // audio only
};

struct ClapOutput {
  Tensor logits_per_audio, logits_per_text, text_embeds, audio_embeds;
  ClapTowerOutput text, audio;
};

class ClapModel : public Model {
 public:
  // input_features [batch, channels, time, num_mel_bins], any float dtype; is_longer [batch] or
  // [batch, 1] of 0/1 (bool or integers), required with enable_fusion and ignored without.
  virtual ClapTowerOutput audio_features(const Tensor& input_features, const Tensor& is_longer,
                                         bool output_hidden_states) = 0;
  // input_ids [batch, seq] I64/I32; attention_mask [batch, seq] (1 = token) or undefined.
  virtual ClapTowerOutput text_features(const Tensor& input_ids, const Tensor& attention_mask,
                                        bool output_hidden_states) = 0;
  virtual ClapOutput forward_pair(const Tensor& input_ids, const Tensor& attention_mask,
                                  const Tensor& input_features, const Tensor& is_longer,
                                  bool output_hidden_states) = 0;
};

std::unique_ptr<Model> build_clap_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head);

}  // namespace hfport::models
