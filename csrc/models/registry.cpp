// The native model of each family. See registry.h.
#include "models/registry.h"

#include "core/error.h"

#include "models/albert.h"
#include "models/bert.h"
#include "models/clap.h"
#include "models/dinov2.h"
#include "models/dinov3.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "models/mamba.h"
#include "models/mamba2.h"
#include "models/rwkv.h"
#include "models/timm_vit.h"
#include "models/videomae.h"
#include "models/vit.h"
#include "models/wav2vec2_bert.h"
#include "models/whisper.h"

namespace hfport::models {

namespace {

using HostBuilder = std::unique_ptr<Model> (*)(nlohmann::json,
                                               std::vector<std::pair<std::string, Tensor>>,
                                               const std::string& head);

// A family whose forward runs on the CPU only: a CUDA device is refused before anything is built.
ModelBuilder host_only(const std::string& family, HostBuilder build) {
  return [family, build](nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state,
                         const Device& device, const std::string& head) {
    if (device.type != DeviceType::CPU) {
      throw DeviceError("native " + family + " model: runs on the CPU only; the CUDA forward "
                        "covers the llama family (llama, mistral, qwen2, qwen3), mamba, the "
                        "image encoders (vit, timm_vit, dinov2, dinov2_with_registers, dinov3) "
                        "and videomae (videomae, videomae_opengvlab)");
    }
    return build(std::move(config), std::move(state), head);
  };
}

}  // namespace

const std::map<std::string, ModelBuilder>& model_builders() {
  static const std::map<std::string, ModelBuilder> builders = {
      {"llama", llama_family_builder("llama")},
      {"mistral", llama_family_builder("mistral")},
      {"qwen2", llama_family_builder("qwen2")},
      {"qwen3", llama_family_builder("qwen3")},
      {"mamba", [](nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state,
                   const Device& device, const std::string& head) {
         return build_mamba_model(std::move(config), std::move(state), device, head);
       }},
      {"mamba2", host_only("mamba2", build_mamba2_model)},
      {"rwkv", host_only("rwkv", build_rwkv_model)},
      {"rwkv_original", host_only("rwkv_original", build_rwkv_original_model)},
      {"gpt2", host_only("gpt2", build_gpt2_model)},
      {"bert", host_only("bert", build_bert_model)},
      {"roberta", host_only("roberta", build_roberta_model)},
      {"albert", host_only("albert", build_albert_model)},
      {"vit", build_vit_model},
      {"dinov3", build_dinov3_model},
      {"clap", host_only("clap", build_clap_model)},
      {"wav2vec2-bert", host_only("wav2vec2-bert", build_wav2vec2_bert_model)},
      {"dinov2", [](nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state,
                    const Device& device, const std::string& head) {
         return build_dinov2_model("dinov2", std::move(config), std::move(state), device, head);
       }},
      {"dinov2_with_registers",
       [](nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state,
          const Device& device, const std::string& head) {
         return build_dinov2_model("dinov2_with_registers", std::move(config), std::move(state),
                                   device, head);
       }},
      {"timm_vit", build_timm_vit_model},
      {"videomae", build_videomae_model},
      {"videomae_opengvlab", build_videomae_opengvlab_model},
      {"whisper", host_only("whisper", build_whisper_model)},
  };
  return builders;
}

}  // namespace hfport::models
