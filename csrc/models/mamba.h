// Mamba-1 (transformers MambaForCausalLM), native.
//
// Per block, on x [batch, L, hidden]:
//   h = rms_norm(x) (times the attention mask, as transformers' apply_mask_to_padding_states)
//   xz = ssm_in(h) -> x, z  [batch, L, d_inner] each
//   x = silu(causal_conv1d(x) + conv bias)   (masked again)
//   dt, B, C = ssm_x_dt(x), ssm_x_b(x), ssm_x_c(x)   (x_proj split by the spec)
//   delta = ssm_dt.weight @ dt   (no bias here: transformers hands dt_proj's bias to the scan as
//                                 delta_bias, then softplus(delta + bias))
//   y = selective_scan(x, delta, A = ssm_a, B, C, D = ssm_d, z)   (y * silu(z))
//   x = x + ssm_out(y)
// then output_norm (norm_f) and the head (output.weight, tied to tok_embd when the config says so).
//
// hidden_states follow MambaModel's tuple: the output of every block, then norm_f of the last
// (num_hidden_layers + 1 entries; unlike the attention families the embeddings are not in it).
//
// Decoding keeps, per layer, the last conv_kernel inputs of the conv ([batch, d_inner, kernel],
// transformers' conv_states) and the SSM state ([batch, d_inner, N], F32). The first call on an
// empty cache runs the full-sequence kernels and keeps their final states; later calls step with
// causal_conv1d_update and selective_state_update, as transformers' generate does. A mask given
// to forward_cached ([batch, cached + new]) zeroes the padded rows among the new tokens, as the
// forward does with its mask; generate passes a left-padded prompt's mask on the first call, and
// every later column is a token, matching MambaForCausalLM, which drops the mask after prefill.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_mamba_model(nlohmann::json config,
                                         std::vector<std::pair<std::string, Tensor>> state,
                                         const Device& device = Device{},
                                         const std::string& head = "causal_lm");

}  // namespace hfport::models
