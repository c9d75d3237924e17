// The native model of each family. See registry.h.
#include "models/registry.h"

#include "models/bert.h"
#include "models/gpt2.h"
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
      {"gpt2", build_gpt2_model},
      {"bert", build_bert_model},
  };
  return builders;
}

}  // namespace hfport::models
