// Which native model each family spec builds. A family's model file declares its builder here
// and adds one line to model_builders() in registry.cpp.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

// (config.json with the spec's defaults, the strictly loaded host state, the device to run on,
// the head the load selected: "" for the base model, else the spec's head name such as
// "causal_lm", "masked_lm", "sequence_classification", "token_classification",
// "image_classification").
// A family without a CUDA forward throws DeviceError for a CUDA device, and a head it has no
// forward for an Error naming the head.
using ModelBuilder = std::function<std::unique_ptr<Model>(
    nlohmann::json, std::vector<std::pair<std::string, Tensor>>, const Device&,
    const std::string& head)>;

// Family spec name -> builder ("llama", "mistral", "qwen2", "qwen3", "mamba", "mamba2", "rwkv",
// "rwkv_original", "gpt2", "bert", "roberta", "albert", "vit", "dinov2", "dinov2_with_registers",
// "videomae").
const std::map<std::string, ModelBuilder>& model_builders();

}  // namespace hfport::models
