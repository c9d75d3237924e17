// RWKV-4 (transformers RwkvForCausalLM / RwkvModel, and BlinkDL's RWKV-LM names through the
// rwkv_original spec), native, on the CPU.
//
// On x = embeddings [batch, L, hidden], block 0 first applies embd_norm (transformers' pre_ln,
// BlinkDL's ln0); then each block i:
//   a = layer_norm(x, attn_norm);  s = token shift of a (the previous position's a; zeros before
//       the first, or the cached last a of the previous call)
//   k = attn_k(a mk + s (1 - mk)),  v = attn_v(a mv + s (1 - mv)),  r = sigmoid(attn_r(a mr + s (1 - mr)))
//   x = x + attn_out(r * wkv(time_decay, time_first, k, v))          (ops/rwkv_wkv.h)
//   f = layer_norm(x, ffn_norm);  s = token shift of f
//   x = x + sigmoid(ffn_r(f fr + s (1 - fr))) * ffn_down(relu(ffn_up(f fk + s (1 - fk)))^2)
// then layer_norm(x, output_norm) (eps 1e-5: transformers' ln_out is a default nn.LayerNorm,
// whatever layer_norm_epsilon says) and the head (output.weight; tied to tok_embd when the config
// says so). The base model (head "") returns the final normed hidden state. attention_hidden_size
// (the width of k, v, r and the WKV) may differ from hidden_size.
//
// Rescaling, as RwkvModel does in inference (_rescale_layers, rescale_every = R > 0): attn_out and
// ffn_down of block i are divided by 2^(i / R) once, at load (a power of two: exact), and x is
// halved after every R-th block. hidden_states follow RwkvModel's tuple: every block's output
// after that halving, then ln_out of the last (num_hidden_layers + 1 entries; no embedding entry).
// rwkv_original checkpoints have no rescale_every of their own; a config.json that leaves it out
// gets RwkvConfig's default, 6, as the same weights converted to transformers' names would.
//
// Decoding keeps, per layer, the last attn_norm and ffn_norm outputs (the token shifts,
// [batch, hidden]) and the WKV state (num, den, max, [batch, attention_hidden_size] F32): the
// five tensors of transformers' RWKV state. A one-token call steps with rwkv_wkv_update.
//
// The attention mask: transformers' RWKV ignores it (it logs that attention_mask is unused), so a
// padded batch there lets the padding into the state. Here a padded position is skipped instead:
// the WKV leaves the state as it was (rwkv_wkv's mask), and the token shift of the next kept
// position reads the last kept position (zeros before the first). A row padded on either side
// then gives, at its kept positions, what the row alone gives; without padding (no mask, or all
// ones) the result is transformers'. The outputs at padded positions are not meaningful.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

// `head`: "" (RwkvModel) or "causal_lm". The rwkv family's model.
std::unique_ptr<Model> build_rwkv_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head = "causal_lm");

// The rwkv_original family's: its spec declares head.weight as a parameter of the model itself
// (BlinkDL checkpoints always have one), so it always decodes with it.
std::unique_ptr<Model> build_rwkv_original_model(nlohmann::json config,
                                                 std::vector<std::pair<std::string, Tensor>> state,
                                                 const std::string& head = "");

}  // namespace hfport::models
