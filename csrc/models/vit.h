// ViT (transformers ViTModel and ViTForImageClassification), native: the ViT-family encoder of
// models/vision_transformer.h with ViT's switches. Positions are resized only when asked
// (interpolate_pos_encoding, bicubic without antialias); the pooler (dense + tanh on the first
// token) runs when the checkpoint has it; the image_classification head reads the first token.
// config.json: hidden_act gelu (exact), gelu_new or gelu_pytorch_tanh (tanh); pooler_act tanh.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_vit_model(nlohmann::json config,
                                       std::vector<std::pair<std::string, Tensor>> state,
                                       const Device& device, const std::string& head);

}  // namespace hfport::models
