// DINOv3's ViT (transformers DINOv3ViTModel, model_type dinov3_vit), native: the ViT-family encoder
// of models/vision_transformer.h with no position table, q and k of the patch tokens rotated by
// the axial 2-D RoPE table of the image's grid (ops/rope.h rope_2d_table, rope_theta; the class and
// register tokens unrotated), num_register_tokens registers, layer scale, q/k/v biases switched on
// one by one (query_bias, key_bias, value_bias), optional output and MLP biases (proj_bias,
// mlp_bias), and the gated MLP (use_gated_mlp; SiLU gate only). Any image size whose sides hold a
// patch: RoPE needs no resize. pooled is the first token of last_hidden_state (pooler_output); the
// family has no task head in transformers, so only the base model loads. transformers' position
// shift, jitter and rescale act in training only and are not reproduced.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_dinov3_model(nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const Device& device, const std::string& head);

}  // namespace hfport::models
