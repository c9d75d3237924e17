// BERT and RoBERTa encoders with their task heads, native (transformers BertModel / RobertaModel
// and their ForMaskedLM, ForSequenceClassification, ForTokenClassification; sentence-transformers'
// MiniLM is a BertModel).
//
// h = embeddings(ids), then num_hidden_layers post-norm blocks (encoder_layers.h). RoBERTa is
// BERT with three differences, all in this file:
//   - position ids count the tokens that are not padding from pad_token_id + 1, and padding tokens
//     (ids equal to pad_token_id) take position pad_token_id (create_position_ids_from_input_ids);
//   - its masked-LM head always applies the exact gelu (BERT's applies hidden_act);
//   - its sequence classifier reads h[:, 0] through cls.dense + tanh + cls.out, not the pooler.
//
// Outputs (ModelOutput), by the head the load selected (encoder_heads.h):
//   ""                        last_hidden_state [batch, seq, hidden]; pooled = tanh(pooler(h[:, 0]))
//                             when the checkpoint has the pooler (sentence-transformers exports may
//                             drop it); no logits, as transformers' BaseModelOutputWithPooling
//   masked_lm                 logits [batch, seq, vocab_size]
//   sequence_classification   logits [batch, num_labels]
//   token_classification      logits [batch, seq, num_labels]
// Every head also fills last_hidden_state. hidden_states is transformers' tuple: the embedding
// output, then every layer's output (num_hidden_layers + 1 tensors). There is no cache.
//
// Token types: forward_with_token_types takes transformers' token_type_ids; forward gives every
// token type 0, as transformers does when token_type_ids is not given. Padded positions compute like any other (their keys are masked); a
// mean pooling must weight them out with the mask, as sentence-transformers does.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_bert_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head);

std::unique_ptr<Model> build_roberta_model(nlohmann::json config,
                                           std::vector<std::pair<std::string, Tensor>> state,
                                           const std::string& head);

}  // namespace hfport::models
