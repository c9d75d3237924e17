// GPT-2 (transformers GPT2LMHeadModel), native.
//
// h = tok_embd[ids] + pos_embd[positions], then per block (pre-norm):
//   qkv = attn_qkv(layer_norm(h))     [batch, seq, 3 n_embd] (c_attn, transposed to [out, in] by
//                                     the spec); q, k, v are strided bshd views of it
//   h = h + attn_out(attention(q, k, v, causal, key padding from attention_mask))
//   h = h + ffn_down(act(ffn_up(layer_norm(h))))       act: activation_function (gelu_new)
// then output_norm (ln_f) and the head (output.weight, tied to tok_embd when the config says so).
// The attention scale is head_dim^-0.5 when scale_attn_weights (the default), further divided by
// layer + 1 when scale_attn_by_inverse_layer_idx, as GPT2Attention computes it.
//
// Positions follow GPT2Model.forward: arange(seq) offset by the tokens already cached, whatever
// the attention_mask says (padding is masked as keys; it does not shift positions). A query whose
// every key is padding (left padding's first rows) gets zeros here and a uniform average in
// transformers' eager attention; neither is meaningful and tests compare unpadded positions only.
// forward_cached given a mask is generate's step instead: transformers' generate passes
// position_ids made from the mask, so there positions are cumsum(mask) - 1 per row
// (models/decode_mask.h). They never exceed the cache length, which n_positions bounds.
//
// hidden_states is transformers' tuple: the embedding output, the output of blocks 0..L-2, and
// ln_f of the last block's output (L + 1 tensors). Cross-attention weights (add_cross_attention)
// load but are unused: GPT2LMHeadModel skips them when no encoder states are given, and this
// model takes none.
//
// Decoding: a KV cache of [batch, capacity, heads, head_dim] per layer. new_cache's max_length is
// the first capacity (more than n_positions is an error: there are no positions past it); the
// cache grows, doubling, up to n_positions when more tokens come.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_gpt2_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head);

}  // namespace hfport::models
