// What BERT, RoBERTa and ALBERT share below their heads: the summed embeddings and the post-norm
// transformer block (transformers' BertLayer; ALBERT's AlbertLayer is the same computation under
// other names, RoBERTa's is BERT's).
//
// Embeddings, in BertEmbeddings' order of additions (the order matters at 1e-7):
//   x = layer_norm((tok_embd[ids] + type_embd[0]) + pos_embd[position_ids])
// Position ids are 0..seq-1 for BERT and ALBERT; RoBERTa numbers the tokens that are not padding
// from padding_idx + 1 and gives padding tokens padding_idx (`roberta_position_ids`).
//
// Block (post-norm):
//   qkv = attn_qkv(h)                    [batch, seq, 3 hidden], q, k, v fused by the spec
//   a   = attn_out_norm(h + attn_out(attention(q, k, v, key padding from attention_mask)))
//   h'  = ffn_out_norm(a + ffn_down(act(ffn_up(a))))
// act is config.json's hidden_act: gelu (exact), gelu_new or gelu_pytorch_tanh (tanh form).
//
// Everything is F32 on the host, contiguous [batch, seq, width].
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/parameters.h"
#include "ops/activation.h"

namespace hfport::models {

struct EncoderSettings {
  int64_t hidden = 0;
  int64_t heads = 0;
  double eps = 1e-12;  // layer_norm_eps, every norm of the model
  GeluApproximation act = GeluApproximation::None;
};

// hidden_size, num_attention_heads (hidden_size must be a multiple), layer_norm_eps, hidden_act;
// ConfigError naming the family and the field for anything the native model cannot run (a
// position_embedding_type other than absolute, is_decoder: causal attention).
EncoderSettings encoder_settings(const std::string& family, const nlohmann::json& config);

// An activation name as config.json writes it ("gelu", "gelu_new", "gelu_pytorch_tanh") as the
// gelu kernel's form; ConfigError naming the family, `field` and the names it accepts otherwise.
GeluApproximation encoder_activation(const std::string& family, const std::string& field,
                                     const std::string& name);

// position_ids [batch, seq] I64: 0..seq-1 on every row.
Tensor absolute_position_ids(int64_t batch, int64_t seq);
// transformers' create_position_ids_from_input_ids: cumsum(ids != padding_idx) * (ids !=
// padding_idx) + padding_idx, so the first real token is padding_idx + 1 and every padding token
// (an id equal to padding_idx, wherever it sits) has padding_idx. `ids` contiguous I64.
Tensor roberta_position_ids(const Tensor& ids, int64_t padding_idx);

// (tok_embd[ids] + type_embd[token_type_ids]) + pos_embd[position_ids], then embd_norm, as
// transformers' BertEmbeddings. token_type_ids: as the caller passed them (undefined: type 0 for
// every token), checked here (models/model_inputs.h). ArgumentError naming the family when a
// position id is outside pos_embd's rows (max_position_embeddings) or a token type outside
// type_embd's. The tables may be narrower than the model (ALBERT's embedding_size).
Tensor encoder_embeddings(const std::string& family, const Parameters& params, const Tensor& ids,
                          const Tensor& token_type_ids, const Tensor& position_ids, double eps);

struct PostNormBlock {
  Tensor qkv_w, qkv_b, out_w, out_b, attn_norm_w, attn_norm_b;
  Tensor up_w, up_b, down_w, down_b, ffn_norm_w, ffn_norm_b;

  // The block's tensors under `prefix` ("blk.3.", ALBERT's "grp.0.blk.0.").
  static PostNormBlock from(const Parameters& params, const std::string& prefix);

  // h [batch, seq, hidden] -> the block's output of the same shape. `mask`: U8 [batch, seq]
  // (1 = token) or undefined for none.
  Tensor forward(const Tensor& h, const Tensor& mask, const EncoderSettings& settings) const;
};

}  // namespace hfport::models
