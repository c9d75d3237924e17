// timm's switches of the ViT-family encoder. See timm_vit.h.
#include "models/timm_vit.h"

#include <tuple>

#include "core/error.h"
#include "models/model_inputs.h"
#include "models/vision_transformer.h"

namespace hfport::models {

namespace {

const std::string kFamily = "timm_vit";

[[noreturn]] void refuse(const std::string& field, const nlohmann::json& value,
                         const std::string& supported) {
  throw ConfigError("native " + kFamily + " model: config.json's " + field + " " + value.dump() +
                    " is not supported (" + supported + ")");
}

// img_size / patch_size: an int, or a list of two ints.
std::pair<int64_t, int64_t> size_pair(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it != config.end() && it->is_number_integer()) {
    return {it->get<int64_t>(), it->get<int64_t>()};
  }
  if (it != config.end() && it->is_array() && it->size() == 2 && (*it)[0].is_number_integer() &&
      (*it)[1].is_number_integer()) {
    return {(*it)[0].get<int64_t>(), (*it)[1].get<int64_t>()};
  }
  throw ConfigError("native " + kFamily + " model: config.json needs '" + key +
                    "' as an integer or [height, width], got " +
                    (it == config.end() ? std::string("none") : it->dump()));
}

// A string field that is absent, null or one of `allowed`; returns it ("" when absent or null).
std::string config_choice(const nlohmann::json& config, const char* key,
                          const std::vector<std::string>& allowed, const std::string& supported) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) {
    for (const std::string& a : allowed) {
      if (it->get<std::string>() == a) return a;
    }
  }
  refuse(key, *it, supported);
}

}  // namespace

std::unique_ptr<Model> build_timm_vit_model(nlohmann::json config,
                                            std::vector<std::pair<std::string, Tensor>> state,
                                            const Device& device, const std::string& head) {
  require_head(kFamily, head, {""});  // timm's head is part of the model (output.weight)
  VisionTransformerVariant v;
  v.family = kFamily;
  v.hidden = config_int(kFamily, config, "embed_dim");
  v.layers = config_int(kFamily, config, "depth");
  v.heads = config_int(kFamily, config, "num_heads");
  v.channels = config_int(kFamily, config, "in_chans");
  std::tie(v.image_height, v.image_width) = size_pair(config, "img_size");
  const auto [patch_h, patch_w] = size_pair(config, "patch_size");
  if (patch_h != patch_w) refuse("patch_size", config["patch_size"], "square patches");
  v.patch_size = patch_h;
  v.image_size_text = "img_size " + nlohmann::json{v.image_height, v.image_width}.dump();
  v.eps = 1e-6;  // timm's LayerNorm

  // What would compute something else than the native path.
  if (config_bool(kFamily, config, "qk_norm", false)) refuse("qk_norm", true, "false");
  for (const char* key : {"scale_attn_norm", "scale_mlp_norm", "dynamic_img_pad"}) {
    if (config_bool(kFamily, config, key, false)) refuse(key, true, "false");
  }
  for (const char* key : {"block_fn", "mlp_layer", "embed_layer", "embed_norm_layer"}) {
    const auto it = config.find(key);
    if (it != config.end() && !it->is_null()) refuse(key, *it, "timm's default, null");
  }
  config_choice(config, "pos_embed", {"learn"}, "learn");
  config_choice(config, "attn_layer", {"", "attn"}, "timm's Attention: attn");
  config_choice(config, "norm_layer", {"layernorm"}, "layernorm");
  const std::string act = config_choice(config, "act_layer", {"gelu", "gelu_tanh"},
                                        "gelu, gelu_tanh");
  v.gelu = act == "gelu_tanh" ? GeluApproximation::Tanh : GeluApproximation::None;

  v.class_token = config_bool(kFamily, config, "class_token", true);
  v.registers = config_int(kFamily, config, "reg_tokens");
  if (v.registers < 0) refuse("reg_tokens", v.registers, ">= 0");
  v.prefix_positions = config_bool(kFamily, config, "no_embed_class", false)
                           ? VisionTransformerVariant::PrefixPositions::None
                           : VisionTransformerVariant::PrefixPositions::All;
  v.pre_norm = config_bool(kFamily, config, "pre_norm", false);
  const auto init_values = config.find("init_values");
  v.layer_scale = init_values != config.end() && init_values->is_number() &&
                  init_values->get<double>() != 0.0;

  v.pooled = VisionTransformerVariant::Pooled::Timm;
  const auto pool = config.find("global_pool");
  if (pool == config.end() || !pool->is_string() ||
      (*pool != "token" && *pool != "avg" && *pool != "")) {
    refuse("global_pool", pool == config.end() ? nlohmann::json() : *pool,
           "\"token\", \"avg\", \"\"");
  }
  v.global_pool = pool->get<std::string>();
  if (v.global_pool == "token" && !v.class_token) {
    refuse("global_pool", *pool, "\"token\" needs class_token; timm refuses it too");
  }
  v.pool_include_prefix = config_bool(kFamily, config, "pool_include_prefix", false);
  if (v.global_pool.empty()) {
    for (const auto& [name, tensor] : state) {
      if (name == "output.weight") {
        refuse("global_pool", *pool, "a head (num_classes > 0) needs \"token\" or \"avg\"");
      }
    }
  }

  v.resize = config_bool(kFamily, config, "dynamic_img_size", false)
                 ? VisionTransformerVariant::PositionResize::Always
                 : VisionTransformerVariant::PositionResize::OnRequest;
  v.antialias = true;  // resample_abs_pos_embed's default
  v.timm_resize = true;
  return build_vision_transformer(std::move(v), std::move(config), std::move(state), "", device);
}

}  // namespace hfport::models
