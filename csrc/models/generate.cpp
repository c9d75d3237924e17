// Model::generate and the checkpoint's generation defaults; see generate.h.
#include "models/generate.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "core/device_copy.h"
#include "core/error.h"
#include "core/json_strict.h"
#include "core/regular_file.h"
#include "models/decode_mask.h"
#include "models/model.h"
#include "models/model_inputs.h"

namespace hfport::models {

namespace {

namespace fs = std::filesystem;

GenerationDefaults defaults_from(const nlohmann::json& fields, std::string source) {
  GenerationDefaults defaults;
  defaults.source = std::move(source);
  if (fields.is_object()) {
    defaults.fields = fields;
    defaults.eos_token_id = fields.value("eos_token_id", nlohmann::json());
    defaults.pad_token_id = fields.value("pad_token_id", nlohmann::json());
  }
  return defaults;
}

// The eos ids and the pad id one generate call uses, checked.
struct SpecialTokens {
  std::vector<int64_t> eos;
  std::optional<int64_t> pad;
  std::string pad_origin;  // for messages: "pad_token_id 7 (from config.json of 'dir')"
};

int64_t token_id_from(const nlohmann::json& value, const char* field, const std::string& source) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0) {
    throw ConfigError(source + ": " + field + " must be a token id (an integer >= 0)" +
                      (std::string(field) == "eos_token_id" ? " or a list of them" : "") +
                      ", got " + value.dump() + "; pass " + field + " to generate to override it");
  }
  return value.get<int64_t>();
}

SpecialTokens resolve_special_tokens(const GenerationOptions& options,
                                     const GenerationDefaults& defaults, int64_t batch,
                                     std::vector<std::string>& warnings) {
  SpecialTokens tokens;
  if (options.eos_token_ids) {
    for (int64_t id : *options.eos_token_ids) {
      if (id < 0) {
        throw ArgumentError("generate: eos_token_id must hold token ids >= 0, got " +
                            std::to_string(id));
      }
    }
    tokens.eos = *options.eos_token_ids;
  } else if (defaults.eos_token_id.is_array()) {
    for (const nlohmann::json& id : defaults.eos_token_id) {
      tokens.eos.push_back(token_id_from(id, "eos_token_id", defaults.source));
    }
  } else if (!defaults.eos_token_id.is_null()) {
    tokens.eos.push_back(token_id_from(defaults.eos_token_id, "eos_token_id", defaults.source));
  }
  if (options.pad_token_id) {
    if (*options.pad_token_id < 0) {
      throw ArgumentError("generate: pad_token_id must be a token id >= 0, got " +
                          std::to_string(*options.pad_token_id));
    }
    tokens.pad = options.pad_token_id;
    tokens.pad_origin = "pad_token_id " + std::to_string(*tokens.pad);
  } else if (!defaults.pad_token_id.is_null()) {
    tokens.pad = token_id_from(defaults.pad_token_id, "pad_token_id", defaults.source);
    tokens.pad_origin = "pad_token_id " + std::to_string(*tokens.pad) + " (from " +
                        defaults.source + ")";
  } else if (!tokens.eos.empty()) {
    // transformers' _prepare_special_tokens: the first eos id pads.
    tokens.pad = tokens.eos.front();
    tokens.pad_origin = "the eos id " + std::to_string(*tokens.pad) + " used as pad_token_id";
    if (batch > 1) {
      warnings.push_back("generate: pad_token_id is set neither here nor in the checkpoint; rows "
                         "that finish before the others are padded with the eos id " +
                         std::to_string(*tokens.pad) + ", as transformers does");
    }
  }
  return tokens;
}

// transformers' generate continues every row from its last column; a row that ends in padding
// would take its next token from a padding position's logits.
void refuse_right_padding(const Tensor& mask) {
  const int64_t batch = mask.shape()[0], length = mask.shape()[1];
  for (int64_t b = 0; b < batch; ++b) {
    if (mask.data_as<uint8_t>()[b * length + length - 1] == 0) {
      throw ArgumentError("generate: attention_mask row " + std::to_string(b) + " ends in padding "
                          "(its last column is 0). Generation continues each row from its last "
                          "column, so pad prompts on the left (tokenizers: padding_side='left'); "
                          "transformers warns about right padding and goes on, hfport refuses");
    }
  }
}

// `mask` [batch, n] with a column of ones appended: the generated token of every row counts, the
// pad of a finished row included (transformers appends ones whatever the token).
Tensor with_token_column(const Tensor& mask) {
  const int64_t batch = mask.shape()[0], length = mask.shape()[1];
  Tensor grown = Tensor::empty(DType::U8, {batch, length + 1});
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(grown.data_as<uint8_t>() + b * (length + 1), mask.data_as<uint8_t>() + b * length,
                static_cast<size_t>(length));
    grown.data_as<uint8_t>()[b * (length + 1) + length] = 1;
  }
  return grown;
}

// The scores of the last position of logits [batch, new, vocab] as float64 [batch * vocab] on the
// host. Only that position is copied back from a GPU.
std::vector<double> last_position_scores(const Tensor& logits, int64_t& vocab) {
  if (logits.dtype() != DType::F32 && logits.dtype() != DType::F16 &&
      logits.dtype() != DType::BF16) {
    throw Error("generate expects F32, F16 or BF16 logits, got " +
                std::string(dtype_name(logits.dtype())));
  }
  const Tensor last =
      to_device(contiguous_copy(logits.select(1, logits.shape()[1] - 1)), Device{});
  vocab = last.shape()[1];
  std::vector<double> scores(static_cast<size_t>(last.numel()));
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = load_as_f64(last.data(), last.dtype(), i);
  return scores;
}

}  // namespace

GenerationDefaults read_generation_defaults(const std::string& checkpoint_path,
                                            const nlohmann::json& config) {
  const fs::path given(checkpoint_path);
  const fs::path folder = path_kind(checkpoint_path) == PathKind::Directory ? given
                          : given.parent_path().empty()                     ? fs::path(".")
                                                                            : given.parent_path();
  const fs::path file = folder / "generation_config.json";
  const std::string where = "generation_config.json of '" + folder.string() + "'";
  if (path_kind(file.string()) == PathKind::Missing) {
    return defaults_from(config, "config.json of '" + folder.string() + "'");
  }
  StrictJson parsed = parse_json_strict(read_regular_file(file.string()));
  if (parsed.problem) throw ConfigError(where + ": " + parsed.problem->detail);
  if (!parsed.value.is_object()) {
    throw ConfigError(where + ": a generation config must be a JSON object, got " +
                      std::string(parsed.value.type_name()));
  }
  return defaults_from(parsed.value, where);
}

GenerationDefaults generation_defaults_from_config(const nlohmann::json& config) {
  return defaults_from(config, "config.json");
}

Tensor Model::generate(const Tensor& input_ids, int64_t max_new_tokens) {
  return generate(input_ids, max_new_tokens, GenerationOptions{}).sequences;
}

GenerationOutput Model::generate(const Tensor& input_ids, int64_t max_new_tokens,
                                 const GenerationOptions& options) {
  // Ids are range-checked against the vocabulary by forward_cached; here only their form.
  const Tensor prompt = checked_token_ids(family(), input_ids, std::numeric_limits<int64_t>::max());
  const int64_t batch = prompt.shape()[0], length = prompt.shape()[1];
  if (max_new_tokens < 0 || max_new_tokens > (int64_t{1} << 31) - length) {
    throw ArgumentError("generate: max_new_tokens must be in [0, 2^31 - prompt length], got " +
                        std::to_string(max_new_tokens));
  }
  if (options.min_new_tokens < 0) {
    throw ArgumentError("generate: min_new_tokens must be >= 0, got " +
                        std::to_string(options.min_new_tokens));
  }
  check_sampling_settings(options.sampling);
  Tensor mask = checked_attention_mask(family(), options.attention_mask, prompt.shape());
  if (mask.defined()) {
    refuse_right_padding(mask);
    // A mask of ones changes nothing: the unmasked path is the same computation.
    if (last_columns_all_tokens(mask, length)) mask = Tensor();
  }
  GenerationOutput out;
  const SpecialTokens special =
      resolve_special_tokens(options, generation_defaults(), batch, out.warnings);

  const int64_t width = length + max_new_tokens;
  Tensor sequences = Tensor::empty(DType::I64, {batch, width});
  int64_t* rows = sequences.data_as<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(rows + b * width, prompt.data_as<int64_t>() + b * length,
                static_cast<size_t>(length) * sizeof(int64_t));
  }
  int64_t steps = 0;
  if (max_new_tokens > 0) {
    auto cache = new_cache(batch, width);
    TokenSampler sampler(options.seed);
    std::vector<bool> unfinished(static_cast<size_t>(batch), true);
    const auto is_eos = [&](int64_t token) {
      return std::find(special.eos.begin(), special.eos.end(), token) != special.eos.end();
    };
    Tensor next = prompt;
    while (true) {
      int64_t vocab = 0;
      std::vector<double> scores = last_position_scores(forward_cached(next, mask, *cache), vocab);
      next = Tensor::empty(DType::I64, {batch, 1});
      for (int64_t b = 0; b < batch; ++b) {
        // A row can only have finished by an eos id, and with eos ids there is a pad id.
        int64_t token = special.pad.value_or(0);
        if (unfinished[static_cast<size_t>(b)]) {
          const std::span<double> row(scores.data() + b * vocab, static_cast<size_t>(vocab));
          if (steps < options.min_new_tokens) suppress_tokens(row, special.eos);
          if (options.do_sample) {
            warp_scores(row, options.sampling);
            token = sampler.draw(softmax_probabilities(row, b));
          } else {
            token = first_argmax(row);
          }
          if (is_eos(token)) unfinished[static_cast<size_t>(b)] = false;
        }
        next.data_as<int64_t>()[b] = token;
        rows[b * width + length + steps] = token;
      }
      ++steps;
      const bool all_finished =
          std::none_of(unfinished.begin(), unfinished.end(), [](bool u) { return u; });
      if (steps == max_new_tokens || all_finished) break;
      if (special.pad && *special.pad >= vocab &&
          std::find(unfinished.begin(), unfinished.end(), false) != unfinished.end()) {
        throw ArgumentError("generate: " + special.pad_origin + " is outside the vocabulary [0, " +
                            std::to_string(vocab) + "), so a finished row cannot be padded with "
                            "it; pass pad_token_id");
      }
      if (mask.defined()) mask = with_token_column(mask);
    }
  }
  out.sequences =
      steps == max_new_tokens ? sequences : sequences.slice(1, 0, length + steps).contiguous();
  return out;
}

}  // namespace hfport::models
