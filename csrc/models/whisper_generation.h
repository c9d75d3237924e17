// What Whisper's generate reads from the checkpoint's generation config, and what it does with the
// tokens around the model: the decoder prompt (transformers' _retrieve_init_tokens), the length
// and the special tokens of the loop (_set_max_new_tokens_and_length, the suppress processors),
// and the trimming of the finished rows (generate_with_fallback, _pad_to_max_length). The model
// itself (models/whisper.h) runs the encoder and the decoder; models/whisper.h describes the whole.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/generate.h"

namespace hfport::models {

struct WhisperGenerationOptions;

// The generation config as transformers' GenerationConfig holds it: generation_config.json, or
// config.json without one. Fields GenerationConfig does not declare (Whisper's lang_to_id,
// task_to_id, no_timestamps_token_id, is_multilingual, language, task, return_timestamps,
// forced_decoder_ids) survive only in a generation_config.json that is not marked
// "_from_model_config" (save_pretrained marks the one it derives from a bare config, and
// GenerationConfig.__init__ drops undeclared fields from such a file).
struct WhisperGenerationConfig {
  nlohmann::json fields;  // a JSON object
  std::string source;     // for messages: "generation_config.json of 'dir'"
  nlohmann::json config;  // config.json, where forced_decoder_ids may also be

  static WhisperGenerationConfig read(const GenerationDefaults& defaults,
                                      const nlohmann::json& config);
};

// Chooses one language token per row among `language_ids` (transformers' detect_language: the
// largest logit after the start token).
using WhisperLanguageDetector =
    std::function<std::vector<int64_t>(int64_t start_token, const std::vector<int64_t>& language_ids)>;

// The decoder prompt of every row, [batch, n] I64: the start token, forced_decoder_ids' tokens when
// neither language nor task is set, the language token (asked for, or `detect` when the config has
// lang_to_id and none is set), the task token, the no-timestamps token. ConfigError for a config
// that asks for timestamps or lacks decoder_start_token_id; ArgumentError for a language or task
// the config has no token for.
Tensor whisper_decoder_prompt(const WhisperGenerationConfig& config,
                              const WhisperGenerationOptions& options, int64_t batch,
                              const WhisperLanguageDetector& detect);

struct WhisperDecodingLimits {
  int64_t total = 0;  // the rows' length, prompt included, when no row finishes early
  std::optional<int64_t> eos, pad;
  std::vector<int64_t> suppress, begin_suppress;  // every step; the first step only
};

// _set_max_new_tokens_and_length and the special tokens: total = prompt + max_new_tokens (given,
// or the config's), else min(max_length (20 by default) + min(max_target_positions / 2 - 1,
// prompt), max_target_positions). ArgumentError when prompt + max_new_tokens exceeds
// max_target_positions, as transformers raises.
WhisperDecodingLimits whisper_decoding_limits(const WhisperGenerationConfig& config,
                                              int64_t prompt_length,
                                              int64_t max_target_positions,
                                              std::optional<int64_t> max_new_tokens);

// The generated tokens of each row (prompt excluded) as transformers returns them: a row ending in
// pad loses as many tokens as it holds pads anywhere (one fewer when pad is eos), then a final eos;
// rows are padded on the right with pad to the longest. [batch, n] I64.
Tensor whisper_finished_rows(std::vector<std::vector<int64_t>> rows, std::optional<int64_t> eos,
                             std::optional<int64_t> pad);

}  // namespace hfport::models
