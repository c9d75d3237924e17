// timm's VisionTransformer (a state dict with timm's names, config.json with its constructor
// arguments at the top level; family timm_vit), native: the ViT-family encoder of
// models/vision_transformer.h with timm's switches, computing what timm's forward computes in eval
// mode (forward_features, then forward_head).
//
// Read from config.json (the spec's defaults applied): embed_dim, depth, num_heads, img_size (an
// int or [h, w]), patch_size (an int or a square [p, p]), in_chans; class_token, reg_tokens,
// no_embed_class, pre_norm, final_norm, fc_norm, global_pool ("token", "avg" or "" without a
// head), pool_include_prefix, init_values (layer scale when set), qkv_bias, act_layer (gelu,
// gelu_tanh), norm_layer (layernorm; timm's LayerNorm has eps 1e-6).
//
// Image size: timm's PatchEmbed takes img_size only, unless dynamic_img_size is set; then the
// position table is resampled to each image's grid as resample_abs_pos_embed does it (bicubic,
// antialias on, the prefix rows left alone, the table kept as it is when the grid is square with
// its patch count) and the image must tile into whole patches. interpolate_pos_encoding=True asks
// for the same resample without dynamic_img_size (what timm's set_input_size applies).
//
// Outputs: last_hidden_state (after the final norm where timm has one), pooled: timm's pre-logits
// features (pool, then fc_norm), logits = head(pooled) when num_classes > 0; hidden_states: the
// embeddings (after norm_pre), then each block's output.
//
// Refused with ConfigError naming the field: what changes the computation and has no native path
// (qk_norm, attention pooling "map"/"prr", "max"/"avgmax" pooling, pos_embed other than "learn",
// dynamic_img_pad, other activations, norms, blocks or MLPs).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_timm_vit_model(nlohmann::json config,
                                            std::vector<std::pair<std::string, Tensor>> state,
                                            const Device& device, const std::string& head);

}  // namespace hfport::models
