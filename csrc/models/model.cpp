// The shared part of the models: greedy generation on top of the cache, and the family registry.
#include "models/model.h"

#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "core/device.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "mapping/family_spec.h"
#include "mapping/loader.h"
#include "models/model_inputs.h"
#include "models/registry.h"

namespace hfport::models {

std::unique_ptr<DecodeCache> Model::new_cache(int64_t, int64_t) const {
  throw Error("model family '" + family() + "' does not decode (it has no cache)");
}

Tensor Model::forward_cached(const Tensor&, DecodeCache&) {
  throw Error("model family '" + family() + "' does not decode (it has no cache)");
}

namespace {

// The argmax over the vocabulary of the last position of logits [batch, new, vocab], on the host
// (logits on a GPU are copied back first; the last step's [batch, vocab] would do, but a decode
// step has one position anyway).
std::vector<int64_t> last_argmax(const Tensor& logits) {
  const Tensor c = to_device(logits, Device{}).contiguous();
  const int64_t batch = c.shape()[0], steps = c.shape()[1], vocab = c.shape()[2];
  if (c.dtype() != DType::F32 && c.dtype() != DType::F16 && c.dtype() != DType::BF16) {
    throw Error("generate expects F32, F16 or BF16 logits, got " +
                std::string(dtype_name(c.dtype())));
  }
  std::vector<int64_t> tokens(batch);
  for (int64_t b = 0; b < batch; ++b) {
    const auto row = static_cast<size_t>((b * steps + steps - 1) * vocab);
    int64_t best = 0;
    double best_value = load_as_f64(c.data(), c.dtype(), row);
    for (int64_t v = 1; v < vocab; ++v) {
      const double value = load_as_f64(c.data(), c.dtype(), row + static_cast<size_t>(v));
      if (value > best_value) {  // first maximum, as torch.argmax
        best = v;
        best_value = value;
      }
    }
    tokens[b] = best;
  }
  return tokens;
}

}  // namespace

Tensor Model::generate(const Tensor& input_ids, int64_t max_new_tokens) {
  // Ids are range-checked against the vocabulary by forward_cached; here only their form.
  const Tensor prompt = checked_token_ids(family(), input_ids, std::numeric_limits<int64_t>::max());
  const int64_t batch = prompt.shape()[0], length = prompt.shape()[1];
  if (max_new_tokens < 0 || max_new_tokens > (int64_t{1} << 31) - length) {
    throw ArgumentError("max_new_tokens must be in [0, 2^31 - prompt length], got " +
                        std::to_string(max_new_tokens));
  }
  Tensor out = Tensor::empty(DType::I64, {batch, length + max_new_tokens});
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(out.data_as<int64_t>() + b * (length + max_new_tokens),
                prompt.data_as<int64_t>() + b * length, static_cast<size_t>(length) * 8);
  }
  if (max_new_tokens == 0) return out;
  auto cache = new_cache(batch, length + max_new_tokens);
  Tensor next = prompt;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const std::vector<int64_t> tokens = last_argmax(forward_cached(next, *cache));
    next = Tensor::empty(DType::I64, {batch, 1});
    for (int64_t b = 0; b < batch; ++b) {
      next.data_as<int64_t>()[b] = tokens[b];
      out.data_as<int64_t>()[b * (length + max_new_tokens) + length + step] = tokens[b];
    }
  }
  return out;
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
  return it->second(apply_config_defaults(chosen, checkpoint->config()), std::move(loaded.state),
                    device, loaded.report.head);
}

}  // namespace hfport::models
