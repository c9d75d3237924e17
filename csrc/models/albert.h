// ALBERT encoder with its task heads, native (transformers AlbertModel, AlbertForMaskedLM,
// AlbertForSequenceClassification, AlbertForTokenClassification; rxnmapper ships one).
//
// ALBERT is BERT with two savings:
//   - factorised embeddings: the tables are embedding_size wide (tok_embd, pos_embd, type_embd,
//     embd_norm), and embd_proj [hidden, embedding_size] maps their sum into the hidden width;
//   - shared layers: num_hidden_groups groups of inner_group_num post-norm blocks
//     (grp.{g}.blk.{j}.*, encoder_layers.h) serve all num_hidden_layers steps. Step i runs group
//     int(i / (num_hidden_layers / num_hidden_groups)) (transformers' float division), each
//     group running its blocks in order. The usual checkpoint has one group of one block, which
//     every step reuses.
//
// hidden_states follows transformers, which records every block's output: the embedding output
// after embd_proj, then num_hidden_layers * inner_group_num entries.
//
// Outputs by head (encoder_heads.h): "" last_hidden_state (+ pooled = tanh(pooler(h[:, 0])) when
// the pooler is loaded); masked_lm logits [batch, seq, vocab] through mlm.dense [embedding_size,
// hidden], hidden_act, mlm.norm [embedding_size] and the decoder [vocab, embedding_size] (tied to
// tok_embd when tie_word_embeddings); sequence_classification cls.out(pooled) [batch, num_labels];
// token_classification cls.out(h) [batch, seq, num_labels]. Every token has type 0.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_albert_model(nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const std::string& head);

}  // namespace hfport::models
