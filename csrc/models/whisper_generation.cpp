// Whisper's generation config, decoder prompt, limits and trimming. See whisper_generation.h.
#include "models/whisper_generation.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "models/whisper.h"

namespace hfport::models {

namespace {

std::optional<int64_t> token_field(const nlohmann::json& fields, const char* field,
                                   const std::string& source) {
  const auto it = fields.find(field);
  if (it == fields.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) {
    throw ConfigError(source + ": " + field + " must be a token id, got " + it->dump());
  }
  return it->get<int64_t>();
}

std::vector<int64_t> token_list(const nlohmann::json& fields, const char* field,
                                const std::string& source) {
  std::vector<int64_t> ids;
  const auto it = fields.find(field);
  if (it == fields.end() || it->is_null()) return ids;
  if (!it->is_array()) {
    throw ConfigError(source + ": " + field + " must be a list of token ids, got " + it->dump());
  }
  for (const nlohmann::json& id : *it) {
    if (!id.is_number_integer()) {
      throw ConfigError(source + ": " + field + " must hold token ids, got " + id.dump());
    }
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

// A JSON boolean that is exactly `value` (null, absent or another type: false).
bool flag_is(const nlohmann::json& fields, const char* field, bool value) {
  const auto it = fields.find(field);
  return it != fields.end() && it->is_boolean() && it->get<bool>() == value;
}

std::optional<std::string> text_field(const nlohmann::json& fields, const char* field,
                                      const std::string& source) {
  const auto it = fields.find(field);
  if (it == fields.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw ConfigError(source + ": " + field + " must be a string");
  return it->get<std::string>();
}

// The language token of `language` ("en" or "<|en|>") in lang_to_id.
int64_t language_id(const std::string& language, const nlohmann::json& lang_to_id,
                    const std::string& source) {
  if (!lang_to_id.is_object()) {
    throw ArgumentError("generate: language '" + language + "' was asked for, but " + source +
                        " has no lang_to_id (an English-only or outdated generation config)");
  }
  std::string key = language;
  for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (!lang_to_id.contains(key)) key = "<|" + key + "|>";
  const auto it = lang_to_id.find(key);
  if (it == lang_to_id.end() || !it->is_number_integer()) {
    throw ArgumentError("generate: language '" + language + "' is not in " + source +
                        "'s lang_to_id; pass a language code such as 'en' or a token such as "
                        "'<|en|>' (full names are not mapped)");
  }
  return it->get<int64_t>();
}

// forced_decoder_ids ([[1, id], [2, id], ...], id null for "any") as prompt tokens after the start.
std::vector<std::optional<int64_t>> forced_tokens(const nlohmann::json& forced,
                                                  const std::string& source) {
  std::vector<std::optional<int64_t>> tokens;
  if (!forced.is_array() || forced.empty() || !forced[0].is_array() || forced[0].size() != 2 ||
      forced[0][0] != 1) {
    return tokens;
  }
  int64_t position = 1;
  for (const nlohmann::json& pair : forced) {
    if (!pair.is_array() || pair.size() != 2 || pair[0] != position) {
      throw ConfigError(source + ": forced_decoder_ids must force positions 1, 2, ... in order, "
                        "got " + forced.dump());
    }
    tokens.push_back(pair[1].is_number_integer() ? std::optional<int64_t>(pair[1].get<int64_t>())
                                                 : std::nullopt);
    ++position;
  }
  return tokens;
}

}  // namespace

WhisperGenerationConfig WhisperGenerationConfig::read(const GenerationDefaults& defaults,
                                                      const nlohmann::json& config) {
  WhisperGenerationConfig g;
  g.source = defaults.source;
  g.config = config;
  g.fields = defaults.fields;
  const bool from_model_config =
      !g.fields.is_object() || flag_is(g.fields, "_from_model_config", true);
  if (!g.fields.is_object()) g.fields = config.is_object() ? config : nlohmann::json::object();
  if (from_model_config) {
    for (const char* key : {"lang_to_id", "task_to_id", "no_timestamps_token_id",
                            "is_multilingual", "language", "task", "return_timestamps",
                            "forced_decoder_ids"}) {
      g.fields.erase(key);
    }
  }
  return g;
}

Tensor whisper_decoder_prompt(const WhisperGenerationConfig& config,
                              const WhisperGenerationOptions& options, int64_t batch,
                              const WhisperLanguageDetector& detect) {
  const nlohmann::json& g = config.fields;
  const std::string& source = config.source;
  if (flag_is(g, "return_timestamps", true)) {
    throw ConfigError(source + " sets return_timestamps, which the native whisper generate does "
                      "not cover (no timestamp tokens); use transformers");
  }
  const std::optional<int64_t> start = token_field(g, "decoder_start_token_id", source);
  if (!start) throw ConfigError(source + ": decoder_start_token_id is not set");
  const std::optional<std::string> language =
      options.language ? options.language : text_field(g, "language", source);
  const std::optional<std::string> task = options.task ? options.task : text_field(g, "task", source);
  if ((options.language || options.task) && flag_is(g, "is_multilingual", false)) {
    throw ArgumentError("generate: task and language are for multilingual models; " + source +
                        " says is_multilingual false");
  }
  // _retrieve_init_tokens, step by step.
  std::vector<std::optional<int64_t>> init = {*start};
  if (!language && !task) {
    nlohmann::json forced = g.value("forced_decoder_ids", nlohmann::json());
    if (forced.is_null()) forced = config.config.value("forced_decoder_ids", nlohmann::json());
    for (const auto& token : forced_tokens(forced, source)) init.push_back(token);
  }
  const bool language_undefined = init.size() <= 1 || !init[1];
  const nlohmann::json lang_to_id = g.value("lang_to_id", nlohmann::json());
  std::vector<std::vector<std::optional<int64_t>>> rows(static_cast<size_t>(batch), init);
  std::vector<int64_t> languages;
  if (language) {
    languages.assign(static_cast<size_t>(batch), language_id(*language, lang_to_id, source));
  } else if (lang_to_id.is_object() && language_undefined) {
    std::vector<int64_t> ids;
    for (const auto& entry : lang_to_id.items()) {
      if (entry.value().is_number_integer()) ids.push_back(entry.value().get<int64_t>());
    }
    languages = detect(*start, ids);
  }
  for (size_t b = 0; b < languages.size(); ++b) {
    if (rows[b].size() > 1) {
      rows[b][1] = languages[b];
    } else {
      rows[b].push_back(languages[b]);
    }
  }
  const nlohmann::json task_to_id = g.value("task_to_id", nlohmann::json());
  const std::optional<int64_t> no_timestamps = token_field(g, "no_timestamps_token_id", source);
  if (task && *task != "transcribe" && *task != "translate") {
    throw ArgumentError("generate: task must be 'transcribe' or 'translate', got '" + *task + "'");
  }
  if (task && (!task_to_id.is_object() || !task_to_id.contains(*task) ||
               !task_to_id[*task].is_number_integer())) {
    throw ArgumentError("generate: task '" + *task + "' was asked for, but " + source +
                        " has no task_to_id entry for it");
  }
  for (auto& row : rows) {
    if (task) {
      row.push_back(task_to_id[*task].get<int64_t>());
    } else if (language && task_to_id.is_object()) {
      // A language without a task: transcribe, unless a task token is there already.
      const bool has_task = std::any_of(row.begin(), row.end(), [&](const auto& token) {
        for (const auto& entry : task_to_id.items()) {
          if (token && entry.value() == *token) return true;
        }
        return false;
      });
      if (!has_task && task_to_id.contains("transcribe")) {
        row.push_back(task_to_id["transcribe"].get<int64_t>());
      }
    }
    if (no_timestamps && row.back() != no_timestamps) row.push_back(*no_timestamps);
    row.erase(std::remove(row.begin(), row.end(), std::nullopt), row.end());
  }
  const int64_t n = static_cast<int64_t>(rows.front().size());
  Tensor out = Tensor::empty(DType::I64, {batch, n});
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      out.data_as<int64_t>()[b * n + i] = *rows[static_cast<size_t>(b)][static_cast<size_t>(i)];
    }
  }
  return out;
}

WhisperDecodingLimits whisper_decoding_limits(const WhisperGenerationConfig& config,
                                              int64_t prompt_length,
                                              int64_t max_target_positions,
                                              std::optional<int64_t> max_new_tokens) {
  const nlohmann::json& g = config.fields;
  const std::string& source = config.source;
  WhisperDecodingLimits limits;
  if (!max_new_tokens) max_new_tokens = token_field(g, "max_new_tokens", source);
  if (max_new_tokens) {
    if (*max_new_tokens < 0) {
      throw ArgumentError("generate: max_new_tokens must be >= 0, got " +
                          std::to_string(*max_new_tokens));
    }
    if (*max_new_tokens + prompt_length > max_target_positions) {
      throw ArgumentError("generate: the decoder prompt has " + std::to_string(prompt_length) +
                          " tokens and max_new_tokens is " + std::to_string(*max_new_tokens) +
                          "; together they exceed max_target_positions " +
                          std::to_string(max_target_positions));
    }
    limits.total = prompt_length + *max_new_tokens;
  } else {
    const int64_t max_length = token_field(g, "max_length", source).value_or(20);
    limits.total = std::min(max_length + std::min(max_target_positions / 2 - 1, prompt_length),
                            max_target_positions);
  }
  limits.eos = token_field(g, "eos_token_id", source);
  limits.pad = token_field(g, "pad_token_id", source);
  if (!limits.pad) limits.pad = limits.eos;
  limits.suppress = token_list(g, "suppress_tokens", source);
  limits.begin_suppress = token_list(g, "begin_suppress_tokens", source);
  return limits;
}

Tensor whisper_finished_rows(std::vector<std::vector<int64_t>> rows, std::optional<int64_t> eos,
                             std::optional<int64_t> pad) {
  size_t longest = 0;
  for (auto& row : rows) {
    if (pad && !row.empty() && row.back() == *pad) {
      int64_t pads = std::count(row.begin(), row.end(), *pad);
      if (eos && *eos == *pad) pads -= 1;
      row.resize(row.size() - static_cast<size_t>(std::clamp<int64_t>(pads, 0, row.size())));
    }
    if (eos && !row.empty() && row.back() == *eos) row.pop_back();
    longest = std::max(longest, row.size());
  }
  const int64_t batch = static_cast<int64_t>(rows.size()), width = static_cast<int64_t>(longest);
  Tensor out = Tensor::empty(DType::I64, {batch, width});
  for (int64_t b = 0; b < batch; ++b) {
    const auto& row = rows[static_cast<size_t>(b)];
    for (int64_t i = 0; i < width; ++i) {
      out.data_as<int64_t>()[b * width + i] =
          i < static_cast<int64_t>(row.size()) ? row[static_cast<size_t>(i)] : pad.value_or(0);
    }
  }
  return out;
}

}  // namespace hfport::models
