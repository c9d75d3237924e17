// ViT's switches of the ViT-family encoder. See vit.h.
#include "models/vit.h"

#include "core/error.h"
#include "models/model_inputs.h"
#include "models/vision_transformer.h"

namespace hfport::models {

namespace {

const std::string kFamily = "vit";

}  // namespace

std::unique_ptr<Model> build_vit_model(nlohmann::json config,
                                       std::vector<std::pair<std::string, Tensor>> state,
                                       const Device& device, const std::string& head) {
  VisionTransformerVariant v = vision_sizes(kFamily, config, 1e-12);  // ViTConfig's default eps
  v.resize = VisionTransformerVariant::PositionResize::OnRequest;
  v.gelu = vision_gelu(kFamily, config);
  v.pooled = VisionTransformerVariant::Pooled::Pooler;
  v.classifier = VisionTransformerVariant::ClassifierInput::FirstToken;
  const std::string pooler_act = config.value("pooler_act", std::string("tanh"));
  for (const auto& [name, tensor] : state) {
    if (name == "pooler.weight" && pooler_act != "tanh") {
      throw ConfigError("native vit model: pooler_act '" + pooler_act + "' is not supported (tanh)");
    }
  }
  return build_vision_transformer(std::move(v), std::move(config), std::move(state), head, device);
}

}  // namespace hfport::models
