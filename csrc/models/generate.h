// Decoding with the cache as transformers' generate does it with num_beams = 1
// (GenerationMixin._sample: greedy with do_sample false, sampling with it true), for every family
// with a cache (Model::generate, defined in generate.cpp).
//
// Per step, as _sample: the model runs the new tokens (the prompt first, then one token a row),
// the scores of each row's last position go through the processors of token_choice.h and a token
// is chosen; a row that has produced an eos id is finished, and from the next step on gets
// pad_token_id instead of a chosen token (next * unfinished + pad * (1 - unfinished)); decoding
// ends after max_new_tokens steps or as soon as every row has finished, so the output may be
// shorter than prompt + max_new_tokens, exactly as transformers' is.
//
// Padding. attention_mask (1 = token, 0 = padding) lets rows of different lengths share a batch,
// padded on the LEFT: padded keys are masked, and the LLaMA family and GPT-2 take positions from
// the mask (models/decode_mask.h: a row's first token is at position 0); Mamba and Mamba-2 mask
// the padded rows of the prompt only, as their prepare_inputs_for_generation drops the mask after
// the first step; RWKV skips padded positions (models/rwkv.h; transformers' RWKV ignores masks). A row whose last column is padding (right padding) is refused: transformers
// logs a warning and goes on, choosing the row's next token from the logits of a padding position.
// Without attention_mask every token counts; unlike transformers, no mask is inferred from
// pad_token_id occurring in input_ids (pass attention_mask instead).
//
// Special tokens. eos_token_ids and pad_token_id default to the checkpoint's, as transformers'
// model.generation_config holds them: generation_config.json beside the checkpoint when there is
// one (GenerationConfig.from_pretrained; a field it lacks is unset), else config.json's fields
// (GenerationConfig.from_model_config). With eos ids and no pad id, the first eos id pads
// (_prepare_special_tokens). The sampling settings (do_sample, temperature, top_k, top_p) are
// always the ones given here: a checkpoint's sampling defaults in generation_config.json are not
// applied (transformers applies them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/token_choice.h"

namespace hfport::models {

struct GenerationOptions {
  // [batch, seq] of 0/1 in any integer or bool dtype (transformers' attention_mask), left padded;
  // undefined: every token counts.
  Tensor attention_mask;
  // EOS is suppressed (its scores -inf) until this many tokens were generated in a row.
  int64_t min_new_tokens = 0;
  // nullopt: the checkpoint's; an empty list: no eos, every row runs max_new_tokens steps.
  std::optional<std::vector<int64_t>> eos_token_ids;
  // nullopt: the checkpoint's, else the first eos id.
  std::optional<int64_t> pad_token_id;
  bool do_sample = false;
  SamplingSettings sampling;        // checked even when do_sample is false
  std::optional<uint64_t> seed;     // nullopt: a fresh seed every call
};

struct GenerationOutput {
  // [batch, seq + steps] I64, steps <= max_new_tokens (fewer when every row finished early).
  Tensor sequences;
  // What transformers logs as a warning in the same situation (the Python layer raises each as
  // a UserWarning): today, that pad_token_id fell back to the eos id for a batch.
  std::vector<std::string> warnings;
};

// The eos / pad defaults of a checkpoint, as written in the file they come from (validated when
// generate uses them, so an odd value never stops a model from loading).
struct GenerationDefaults {
  nlohmann::json eos_token_id;  // null when absent
  nlohmann::json pad_token_id;  // null when absent
  std::string source;           // the file, for messages: "generation_config.json of 'dir'"
  // Every field of that file (a JSON object; null when there is none), for the families whose
  // generate reads more of it (Whisper's decoder prompt and suppressed tokens, models/whisper.h).
  nlohmann::json fields;
};

// generation_config.json in the checkpoint's folder (`checkpoint_path` is the folder, or a file in
// it) when present, else `config` (config.json). ConfigError naming the file when
// generation_config.json is not a JSON object.
GenerationDefaults read_generation_defaults(const std::string& checkpoint_path,
                                            const nlohmann::json& config);

// The defaults config.json alone gives (a model not built by load_model).
GenerationDefaults generation_defaults_from_config(const nlohmann::json& config);

}  // namespace hfport::models
