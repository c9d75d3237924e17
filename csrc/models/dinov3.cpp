// DINOv3's switches of the ViT-family encoder. See dinov3.h.
#include "models/dinov3.h"

#include "core/error.h"
#include "models/model_inputs.h"
#include "models/vision_transformer.h"

namespace hfport::models {

std::unique_ptr<Model> build_dinov3_model(nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const Device& device, const std::string& head) {
  const std::string family = "dinov3";
  require_head(family, head, {""});
  VisionTransformerVariant v = vision_sizes(family, config, 1e-5);  // DINOv3ViTConfig's default eps
  v.resize = VisionTransformerVariant::PositionResize::Always;  // no table to resize: any size
  v.rope_2d = true;
  v.rope_theta = config_number(family, config, "rope_theta", 100.0);
  if (v.heads <= 0 || v.hidden % v.heads != 0 || (v.hidden / v.heads) % 4 != 0) {
    throw ConfigError("native dinov3 model: the head size hidden_size / num_attention_heads (" +
                      std::to_string(v.hidden) + " / " + std::to_string(v.heads) +
                      ") must be a multiple of 4 (two axes of cos and sin pairs)");
  }
  v.registers = config_int(family, config, "num_register_tokens");
  if (v.registers < 0) {
    throw ConfigError("native dinov3 model: num_register_tokens must be >= 0, got " +
                      std::to_string(v.registers));
  }
  v.layer_scale = true;
  v.swiglu = config_bool(family, config, "use_gated_mlp", false);
  if (v.swiglu) {
    const std::string act = config.value("hidden_act", std::string("gelu"));
    if (act != "silu" && act != "swish") {
      throw ConfigError("native dinov3 model: the gated MLP runs with hidden_act 'silu' "
                        "(SwiGLU), got '" + act + "'");
    }
  } else {
    v.gelu = vision_gelu(family, config);
  }
  v.pooled = VisionTransformerVariant::Pooled::FirstToken;
  return build_vision_transformer(std::move(v), std::move(config), std::move(state), head, device);
}

}  // namespace hfport::models
