// Whisper (transformers WhisperModel and WhisperForConditionalGeneration), native, with greedy
// decoding as WhisperForConditionalGeneration.generate(input_features, do_sample=False) does it for
// one segment of at most 30 s (short form, no timestamps).
//
// Encoder, for input_features [batch, num_mel_bins, 2 * max_source_positions] (log-mel frames,
// ops/log_mel.h; transformers refuses any other length, and so does this):
//   x = gelu(conv1(features))            kernel 3, padding 1           [batch, frames, d_model]
//   x = gelu(conv2(x))                   kernel 3, padding 1, stride 2 [batch, frames / 2, d_model]
//   h = x + enc.pos_embd                 the checkpoint's sinusoidal table, all of it
// Both convolutions are an unfold of the three taps into one row (weights permuted once to
// [out, tap, in]) and one GEMM (ops/linear.h), then the exact gelu.
// Blocks (pre-norm): h += attn_out(attention(q, k, v)) of attn_norm(h) (q, k, v fused into one
// GEMM at load; k has no bias); h += ffn_down(gelu(ffn_up(ffn_norm(h)))). Then output_norm.
//
// Decoder, for decoder_input_ids [batch, seq]:
//   h = tok_embd[ids] + pos_embd[past + s]
// (scale_embedding is read by nobody: transformers 5.17's WhisperDecoder defines embed_scale but
// never multiplies by it, and the native decoder follows the reference; docs/decisions.md.)
// Blocks (pre-norm): causal self-attention (with the KV cache while decoding), then
// cross-attention on the encoder's last hidden state (its K and V computed once per utterance and
// kept in the cache), then the feed-forward; output_norm; logits = h output.weight^T (proj_out,
// tied to tok_embd when tie_word_embeddings).
//
// Outputs (WhisperOutput) are named as transformers' Seq2SeqLMOutput / Seq2SeqModelOutput:
// logits (conditional_generation head only), last_hidden_state (the decoder's), and
// encoder_last_hidden_state; with output_hidden_states, encoder_hidden_states and
// decoder_hidden_states: the embeddings, then each block's output, the last after the final
// norm (L + 1 entries each, as transformers' tuples).
//
// generate (conditional_generation head), as WhisperGenerationMixin.generate with the
// checkpoint's generation_config.json (else config.json's fields):
//   prompt  [decoder_start_token_id], then forced_decoder_ids' tokens (positions 1, 2, ...) when
//           neither language nor task is set; the language token (the one asked for, else, when
//           the config has lang_to_id, the one detect_language picks: the largest logit among the
//           language tokens after the start token); the task token (the one asked for, or
//           transcribe when a language was asked for and no task token is there yet); the
//           no-timestamps token when the config has no_timestamps_token_id and the prompt does not
//           end with it. A tiny model saved from a bare WhisperConfig has none of these: its
//           prompt is the start token alone. As in transformers, the Whisper-only fields
//           (lang_to_id, task_to_id, no_timestamps_token_id, is_multilingual, language, task,
//           return_timestamps, forced_decoder_ids) count only in a generation_config.json not
//           marked "_from_model_config" (save_pretrained marks the one it derives from a bare
//           config; GenerationConfig drops undeclared fields of such a file); forced_decoder_ids
//           then still come from config.json when it has them.
//   steps   greedy, every row: suppress_tokens' scores -inf at every step, begin_suppress_tokens'
//           at the first step; a row finishes at eos_token_id and gets pad_token_id afterwards;
//           the total length (prompt included) is max_length (generation config, 20 by default)
//           plus min(max_target_positions / 2 - 1, prompt length), at most max_target_positions;
//           or prompt + max_new_tokens when that is given.
//   result  each row without its prompt; trailing pad tokens dropped (transformers drops as many
//           as the row holds pad tokens anywhere, one fewer when pad equals eos), then one final
//           eos; rows padded on the right with pad_token_id to the longest: [batch, n] I64.
// return_timestamps and long-form audio (more than one 30 s segment) are not covered: a
// generation config asking for timestamps is refused with ConfigError.
//
// F32 on the host throughout; a CUDA device is refused (models/registry.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

struct WhisperOutput {
  Tensor logits;                     // [batch, seq, vocab]; undefined for the base model
  Tensor last_hidden_state;          // the decoder's, [batch, seq, d_model]
  Tensor encoder_last_hidden_state;  // [batch, max_source_positions, d_model]
  std::vector<Tensor> encoder_hidden_states, decoder_hidden_states;  // when asked
};

struct WhisperGenerationOptions {
  std::optional<int64_t> max_new_tokens;  // nullopt: the generation config's max_length rule
  // A language code ("en") or token ("<|en|>") from the generation config's lang_to_id; nullopt:
  // the generation config's language, else detection when it has lang_to_id.
  std::optional<std::string> language;
  std::optional<std::string> task;        // "transcribe" or "translate" (task_to_id)
};

class WhisperModel : public Model {
 public:
  std::string main_input_name() const override { return "input_features"; }

  // input_features [batch, num_mel_bins, 2 * max_source_positions], any float dtype;
  // decoder_input_ids [batch, seq] I64/I32.
  virtual WhisperOutput forward_features(const Tensor& input_features,
                                         const Tensor& decoder_input_ids,
                                         bool output_hidden_states) = 0;

  // The decoder prompt generate starts every row with, [batch, n] I64 (detection runs the
  // encoder and one decoder step when it is needed).
  virtual Tensor decoder_prompt(const Tensor& input_features,
                                const WhisperGenerationOptions& options) = 0;

  // Greedy decoding as described above: [batch, n] I64, prompts removed.
  virtual Tensor generate_features(const Tensor& input_features,
                                   const WhisperGenerationOptions& options) = 0;
};

std::unique_ptr<Model> build_whisper_model(nlohmann::json config,
                                           std::vector<std::pair<std::string, Tensor>> state,
                                           const std::string& head);

}  // namespace hfport::models
