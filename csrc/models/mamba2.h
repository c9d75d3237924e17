// Mamba-2 (transformers Mamba2ForCausalLM / Mamba2Model), native, on the CPU.
//
// Per block, on x [batch, L, hidden], with d_inner = expand * hidden = H * P heads of P channels,
// G groups of N-wide B and C, and conv_dim = d_inner + 2 G N:
//   h = rms_norm(x) (times the attention mask, as transformers' apply_mask_to_padding_states)
//   z, xBC, dt = split(ssm_in(h), [d_inner, conv_dim, H])
//   xBC = silu(causal_conv1d(xBC) + conv bias)   (masked again)
//   xs, B, C = split(xBC, [d_inner, G N, G N])   -> x [batch, L, H, P], B and C [batch, L, G, N]
//   y = ssd_scan(x, dt, A = ssm_a, B, C, D = ssm_d, dt_bias = ssm_dt.bias, softplus,
//                clamped to time_step_limit, chunk_size)          (ops/ssd_scan.h)
//   y = rms_norm_gated(y, ssm_norm, gate z)   (silu(z) first, then one RMSNorm over d_inner: what
//                                              transformers' MambaRMSNormGated computes)
//   x = x + ssm_out(y)
// then output_norm (norm_f) and the head (output.weight, tied to tok_embd when the config says
// so); the base model (head "") returns the final normed hidden state.
//
// hidden_states follow Mamba2Model's tuple: every block's output, then norm_f of the last
// (num_hidden_layers + 1 entries; no embedding entry).
//
// Decoding keeps, per layer, the last conv_kernel inputs of the conv ([batch, conv_dim, kernel],
// transformers' conv_states) and the SSM state ([batch, H, P, N] F32, its recurrent_states). The
// first call on an empty cache runs the full-sequence kernels and keeps their final states; a
// later call of one token steps with causal_conv1d_update and ssd_state_update, one of several
// tokens with causal_conv1d_update and ssd_scan from the cached state, as transformers does. Like
// transformers, a one-token step does not clamp dt to time_step_limit (neither its
// mamba2_selective_state_update nor mamba_ssm's step passes the limit); with the default limit
// (0, inf) that makes no difference, since softplus is never negative. A mask given to
// forward_cached ([batch, cached + new]) zeroes the padded rows among the new tokens, as the
// forward does; generate passes a left-padded prompt's mask on the first call and every later
// column is a token, matching Mamba2ForCausalLM, which drops the mask after prefill.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

// `head`: "" (Mamba2Model) or "causal_lm".
std::unique_ptr<Model> build_mamba2_model(nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const std::string& head = "causal_lm");

}  // namespace hfport::models
