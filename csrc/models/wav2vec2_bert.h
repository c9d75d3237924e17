// Wav2Vec2-BERT (transformers Wav2Vec2BertModel), native: the conformer speech encoder whose
// intermediate layers TTS systems take as semantic features. It reads input_features [batch,
// frames, feature_projection_input_dim] (SeamlessM4TFeatureExtractor's stacked filter banks) and an
// optional attention_mask [batch, frames] (1 = frame, 0 = padding):
//
//   x = feat_proj(layer_norm(features, feat_proj_norm));  padded frames set to 0
//   per block (conformer, as Wav2Vec2BertEncoderLayer):
//     x = 0.5 * ffn1(layer_norm(x)) + x                       ffn: down(act(up(.)))
//     x = attn_out(attention(layer_norm(x))) + x              padded keys masked
//     x = conv(x) + x       conv: layer_norm, padded frames to 0, pw1 -> GLU, depthwise causal
//                           conv (left padding kernel - 1), layer_norm, act, pw2 (no biases)
//     x = layer_norm(0.5 * ffn2(layer_norm(x)) + x, out_norm)
//
// Positions (position_embeddings_type): "relative_key" (the default) adds, to every score, q_l .
// E[clamp(r - l, -left_max, right_max) + left_max] * scale from the per-block table
// attn_rel_pos_embd; "rotary" rotates the q and k projections' input (not v's) per head by the
// rotary table of rotary_embedding_base; none adds nothing. Transformer-XL's "relative" is refused
// (ConfigError), as are the adapter and the intermediate FFN (add_adapter,
// use_intermediate_ffn_before_adapter; the family spec does not load them either).
//
// Outputs: last_hidden_state (the last block's output) and, with output_hidden_states,
// transformers' tuple: the encoder's input (the projected features), then every block's output.
// hidden_act: swish / silu, gelu, gelu_new, relu. F32, CPU only.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_wav2vec2_bert_model(nlohmann::json config,
                                                 std::vector<std::pair<std::string, Tensor>> state,
                                                 const std::string& head);

}  // namespace hfport::models
