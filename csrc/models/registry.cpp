// The native model of each family. See registry.h.
#include "models/registry.h"

#include "models/llama.h"
#include "models/mamba.h"

namespace hfport::models {

const std::map<std::string, ModelBuilder>& model_builders() {
  static const std::map<std::string, ModelBuilder> builders = {
      {"llama", llama_family_builder("llama")},
      {"mistral", llama_family_builder("mistral")},
      {"qwen2", llama_family_builder("qwen2")},
      {"qwen3", llama_family_builder("qwen3")},
      {"mamba", build_mamba_model},
  };
  return builders;
}

}  // namespace hfport::models
