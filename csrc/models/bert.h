// BERT encoder (transformers BertModel; sentence-transformers' MiniLM is one), native.
//
// h = layer_norm(tok_embd[ids] + type_embd[0] + pos_embd[arange(seq)])   (embd_norm)
// then per block (post-norm):
//   qkv = attn_qkv(h)                 [batch, seq, 3 hidden] (query, key, value fused by the spec)
//   h = layer_norm(h + attn_out(attention(q, k, v, key padding from attention_mask)))
//   h = layer_norm(h + ffn_down(act(ffn_up(h))))        act: hidden_act (gelu, the exact one)
// The model's output ("logits" in ModelOutput) is the last hidden state [batch, seq, hidden];
// `pooled` is tanh(pooler(h[:, 0])) when the checkpoint has the pooler (it is optional: sentence-
// transformers exports may drop it), else undefined.
//
// Token types: the interface takes none, so every token has type 0, what BertEmbeddings uses when
// token_type_ids is not given. Padded positions compute like any other (their keys are masked); a
// mean pooling must weight them out with the mask, as sentence-transformers does.
//
// hidden_states is transformers' tuple: the embedding output, then every layer's output
// (num_hidden_layers + 1 tensors; the last is the last hidden state). BERT has no cache.
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

}  // namespace hfport::models
