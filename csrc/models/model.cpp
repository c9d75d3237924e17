// The shared part of the models: what a family without a cache answers, and loading a model.
// Decoding (Model::generate) lives in generate.cpp.
#include "models/model.h"

#include <functional>
#include <limits>
#include <map>

#include "core/device.h"
#include "core/error.h"
#include "mapping/family_spec.h"
#include "mapping/loader.h"
#include "models/model_inputs.h"
#include "models/registry.h"

namespace hfport::models {

std::unique_ptr<DecodeCache> Model::new_cache(int64_t, int64_t) const {
  throw Error("model family '" + family() + "' does not decode (it has no cache)");
}

Tensor Model::forward_cached(const Tensor&, const Tensor&, DecodeCache&) {
  throw Error("model family '" + family() + "' does not decode (it has no cache)");
}

ModelOutput Model::forward_pixels(const Tensor& pixel_values, bool output_hidden_states,
                                  bool interpolate_pos_encoding) {
  return forward_pixels(pixel_values, Tensor(), output_hidden_states, interpolate_pos_encoding);
}

ModelOutput Model::forward_pixels(const Tensor&, const Tensor&, bool, bool) {
  throw ArgumentError("native " + family() + " model: takes " + main_input_name() +
                      ", not pixel_values");
}

ModelOutput Model::forward_with_token_types(const Tensor& input_ids, const Tensor& token_type_ids,
                                            const Tensor& attention_mask,
                                            bool output_hidden_states) {
  if (token_type_ids.defined() && input_ids.defined()) {
    const Tensor types = checked_token_type_ids(family(), token_type_ids, input_ids.shape(),
                                                std::numeric_limits<int64_t>::max());
    const int64_t* type = types.data_as<int64_t>();
    const int64_t seq = types.shape()[1];
    for (int64_t i = 0; i < types.numel(); ++i) {
      if (type[i] != 0) {
        throw ArgumentError("native " + family() + " model: token_type_ids[" +
                            std::to_string(i / seq) + ", " + std::to_string(i % seq) + "] = " +
                            std::to_string(type[i]) + ", but this family has no token-type "
                            "embeddings: only type 0 (one segment) can be given");
      }
    }
  }
  return forward(input_ids, attention_mask, output_hidden_states);
}

ModelOutput Model::forward_audio(const Tensor&, const Tensor&, bool) {
  throw ArgumentError("native " + family() + " model: takes " + main_input_name() +
                      ", not input_features");
}

std::vector<std::string> native_families() {
  std::vector<std::string> names;
  for (const auto& [family, build] : model_builders()) names.push_back(family);
  return names;
}

std::unique_ptr<Model> load_model(const std::string& path, DType dtype, const Device& device) {
  LoadOptions options;
  options.dtype = dtype;
  options.device = device;
  return load_model(path, nullptr, options);
}

std::unique_ptr<Model> load_model(const std::string& path, const FamilySpec* spec,
                                  LoadOptions options, LoadReport* report) {
  const Device device = options.device;
  require_usable_device(device, "load_model");
  const auto checkpoint = Checkpoint::open(path);
  const FamilySpec& chosen =
      spec ? *spec : select_family(checkpoint->config(), "config.json of " + path);
  const auto& builders = model_builders();
  auto it = builders.find(chosen.family);
  if (it == builders.end()) {
    std::string known;
    for (const auto& name : native_families()) known += (known.empty() ? "" : ", ") + name;
    throw UnknownFamilyError(path + ": family '" + chosen.family + "' has a spec but no native "
                             "model (native models: " + known + ")");
  }
  // The parameters are made on the host; the builder moves them to the device once.
  options.device = Device{};
  options.stats = false;
  if (!options.dtype) options.dtype = DType::F32;
  LoadResult loaded = load_checkpoint(*checkpoint, &chosen, options);
  if (loaded.report.count(ParamStatus::Missing) || loaded.report.count(ParamStatus::Mismatched)) {
    throw LoadError("a native " + chosen.family + " model needs every parameter its spec " +
                    "declares, strict or not:\n" + loaded.report.error_message());
  }
  if (report) *report = loaded.report;
  std::unique_ptr<Model> model = it->second(apply_config_defaults(chosen, checkpoint->config()),
                                            std::move(loaded.state), device, loaded.report.head);
  model->set_generation_defaults(read_generation_defaults(path, checkpoint->config()));
  return model;
}

}  // namespace hfport::models
