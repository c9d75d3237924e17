// DINOv2's switches of the ViT-family encoder. See dinov2.h.
#include "models/dinov2.h"

#include "core/error.h"
#include "models/model_inputs.h"
#include "models/vision_transformer.h"

namespace hfport::models {

std::unique_ptr<Model> build_dinov2_model(const std::string& family, nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const Device& device, const std::string& head) {
  VisionTransformerVariant v = vision_sizes(family, config, 1e-6);  // Dinov2Config's default eps
  const bool registers = family == "dinov2_with_registers";
  v.resize = VisionTransformerVariant::PositionResize::Always;
  v.antialias = registers;  // Dinov2WithRegistersEmbeddings resizes with antialias=True
  v.registers = registers ? config_int(family, config, "num_register_tokens") : 0;
  if (v.registers < 0) {
    throw ConfigError("native " + family + " model: num_register_tokens must be >= 0, got " +
                      std::to_string(v.registers));
  }
  v.layer_scale = true;
  v.swiglu = config_bool(family, config, "use_swiglu_ffn", false);
  if (!v.swiglu) v.gelu = vision_gelu(family, config);
  v.pooled = VisionTransformerVariant::Pooled::FirstToken;
  v.classifier = VisionTransformerVariant::ClassifierInput::FirstTokenAndPatchMean;
  v.mask_ignored_without_token = !registers;  // Dinov2Embeddings checks use_mask_token
  return build_vision_transformer(std::move(v), std::move(config), std::move(state), head, device);
}

}  // namespace hfport::models
