// The native model of each family. See registry.h.
#include "models/registry.h"

namespace hfport::models {

const std::map<std::string, ModelBuilder>& model_builders() {
  static const std::map<std::string, ModelBuilder> builders = {
  };
  return builders;
}

}  // namespace hfport::models
