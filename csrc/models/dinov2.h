// DINOv2 and DINOv2 with registers (transformers Dinov2Model / Dinov2WithRegistersModel and their
// ForImageClassification), native: the ViT-family encoder of models/vision_transformer.h with
// layer scale (ls1, ls2), the SwiGLU MLP when use_swiglu_ffn, num_register_tokens registers after
// the class token (dinov2_with_registers), and positions resized on every call whose image is not
// config.json's size, as transformers does (bicubic; antialiased for the registers variant).
// pooled is the first token of last_hidden_state (pooler_output); the image_classification head
// reads the first token and the mean of the patch tokens.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

// `family`: "dinov2" or "dinov2_with_registers".
std::unique_ptr<Model> build_dinov2_model(const std::string& family, nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const Device& device, const std::string& head);

}  // namespace hfport::models
