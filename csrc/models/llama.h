// The native LLaMA family: one decoder that serves the specs llama, mistral, qwen2 and qwen3.
//
// The four differ only in what they load and read from config.json, so one class covers them:
//   llama     RMSNorm pre-norm blocks, fused q/k/v, RoPE (every scaling type), GQA, SwiGLU MLP;
//             optional attention_bias (q/k/v and o) and mlp_bias
//   mistral   + a sliding window on every layer when config.sliding_window is set
//   qwen2     + q/k/v biases (no o bias); sliding window only on the layers config.layer_types
//             marks "sliding_attention" (off unless use_sliding_window)
//   qwen3     + per-head RMSNorm of q and k (attn_q_norm / attn_k_norm), applied before RoPE
// Which one a checkpoint is comes from the family spec; whether a bias or q/k norm is there comes
// from the loaded state (a strict load has already decided it from the config).
//
// Forward, per layer (x is the residual stream [batch, seq, hidden] in the parameter dtype):
//   h = rms_norm(x)                        fused with the residual add of the previous branch
//   qkv = h W_qkv^T (+ b)                  [batch, seq, (Hq + 2 Hkv) * D]; q, k, v are strided
//                                          bshd views of it, never copied
//   (qwen3) q, k = rms_norm per head
//   q, k = rope(q, k) in place             positions: arange(seq) + tokens already cached
//   a = attention(q, k, v)                 causal, GQA, sliding window, key padding mask
//   x = x + a W_o^T (+ b)
//   h = rms_norm(x); x = x + down(silu(gate(h)) * up(h))
// then the final norm and the head the load selected (decoder_head.h: causal_lm's output.weight,
// which the loader ties to tok_embd.weight when the config says so; the sequence or token
// classifier; none for LlamaModel). Buffers for h, qkv, the branch output and the MLP activations are made once
// per forward and reused by every layer.
//
// Positions follow transformers 5.x in a plain forward: arange(seq) offset by the cache length,
// whatever the attention_mask says (padding is masked as keys, it does not shift positions). A
// query whose every key is padding (left padding's first rows) gets zeros here and a uniform
// average in transformers; neither is meaningful, and tests compare only unpadded positions.
// forward_cached given a mask is generate's step instead: transformers' generate passes
// position_ids made from the mask, so there positions are cumsum(mask) - 1 per row
// (models/decode_mask.h), and RoPE takes a [batch, seq] table.
//
// hidden_states (output_hidden_states) is transformers' tuple: the embedding output, the output of
// layers 0..L-2, and last the final norm's output (transformers replaces the last layer's raw
// output by the normed one), L + 1 tensors in all.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/model.h"
#include "models/registry.h"

namespace hfport::models {

// Builds the model of `family` ("llama", "mistral", "qwen2" or "qwen3") from config.json (with the
// spec's defaults applied) and its strictly loaded state. Throws ConfigError naming the field for
// a config the model cannot run (a hidden_act other than silu, heads that do not divide, ...).
std::unique_ptr<Model> build_llama_family(const std::string& family, nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const Device& device = Device{},
                                          const std::string& head = "causal_lm");

// build_llama_family for one family, as registry.cpp lists it.
ModelBuilder llama_family_builder(std::string family);

}  // namespace hfport::models
