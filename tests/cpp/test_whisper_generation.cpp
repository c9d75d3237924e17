// Whisper's generate around the model (models/whisper_generation.h): the decoder prompt as
// transformers' _retrieve_init_tokens builds it (forced_decoder_ids, language detection, task,
// no-timestamps), which generation_config.json fields count, the length rule, and transformers'
// trimming of finished rows. Expected values are worked out from transformers 5.17's
// generation_whisper.py by hand, not from this code.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "models/whisper.h"
#include "models/whisper_generation.h"

namespace {

using hfport::Tensor;
using hfport::models::GenerationDefaults;
using hfport::models::WhisperGenerationConfig;
using hfport::models::WhisperGenerationOptions;
using namespace hfport_test;

std::vector<std::vector<int64_t>> rows_of(const Tensor& t) {
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(t.shape()[0]));
  for (int64_t b = 0; b < t.shape()[0]; ++b) {
    for (int64_t i = 0; i < t.shape()[1]; ++i) {
      rows[static_cast<size_t>(b)].push_back(t.data_as<int64_t>()[b * t.shape()[1] + i]);
    }
  }
  return rows;
}

WhisperGenerationConfig config_of(nlohmann::json fields) {
  GenerationDefaults defaults;
  defaults.fields = std::move(fields);
  defaults.source = "generation_config.json of 'tiny'";
  return WhisperGenerationConfig::read(defaults, nlohmann::json::object());
}

// What whisper-tiny's generation_config.json holds, cut down to three languages.
nlohmann::json multilingual() {
  return {{"decoder_start_token_id", 50258}, {"eos_token_id", 50257}, {"pad_token_id", 50257},
          {"lang_to_id", {{"<|en|>", 50259}, {"<|de|>", 50261}, {"<|fr|>", 50265}}},
          {"task_to_id", {{"transcribe", 50359}, {"translate", 50358}}},
          {"no_timestamps_token_id", 50363}, {"is_multilingual", true},
          {"forced_decoder_ids", {{1, nullptr}, {2, 50359}}}};
}

TEST(WhisperGeneration, PromptOfABareConfigIsTheStartToken) {
  int detections = 0;
  const auto detect = [&](int64_t, const std::vector<int64_t>&) {
    ++detections;
    return std::vector<int64_t>{};
  };
  const Tensor prompt = hfport::models::whisper_decoder_prompt(
      config_of({{"decoder_start_token_id", 7}}), WhisperGenerationOptions{}, 2, detect);
  EXPECT_EQ(rows_of(prompt), (std::vector<std::vector<int64_t>>{{7}, {7}}));
  EXPECT_EQ(detections, 0);
}

TEST(WhisperGeneration, ForcedIdsDetectionTaskAndNoTimestamps) {
  // forced_decoder_ids [[1, null], [2, transcribe]] leave the language open: detection fills
  // position 1 per row, the forced transcribe stays, no-timestamps is appended.
  std::vector<int64_t> seen;
  const auto detect = [&](int64_t start, const std::vector<int64_t>& ids) {
    EXPECT_EQ(start, 50258);
    seen = ids;
    return std::vector<int64_t>{50261, 50265};
  };
  const Tensor prompt = hfport::models::whisper_decoder_prompt(
      config_of(multilingual()), WhisperGenerationOptions{}, 2, detect);
  EXPECT_EQ(rows_of(prompt), (std::vector<std::vector<int64_t>>{{50258, 50261, 50359, 50363},
                                                                {50258, 50265, 50359, 50363}}));
  EXPECT_EQ(seen.size(), 3u);
  // A language asked for skips forced_decoder_ids and detection; transcribe is the default task.
  WhisperGenerationOptions options;
  options.language = "DE";
  const auto never = [](int64_t, const std::vector<int64_t>&) -> std::vector<int64_t> {
    ADD_FAILURE() << "detection ran although a language was given";
    return {};
  };
  EXPECT_EQ(rows_of(hfport::models::whisper_decoder_prompt(config_of(multilingual()), options, 1,
                                                           never)),
            (std::vector<std::vector<int64_t>>{{50258, 50261, 50359, 50363}}));
  options.language = "<|fr|>";
  options.task = "translate";
  EXPECT_EQ(rows_of(hfport::models::whisper_decoder_prompt(config_of(multilingual()), options, 1,
                                                           never)),
            (std::vector<std::vector<int64_t>>{{50258, 50265, 50358, 50363}}));
}

TEST(WhisperGeneration, AConfigDerivedFromTheModelConfigLosesWhispersFields) {
  nlohmann::json fields = multilingual();
  fields["_from_model_config"] = true;
  const WhisperGenerationConfig config = config_of(fields);
  for (const char* key : {"lang_to_id", "task_to_id", "no_timestamps_token_id", "forced_decoder_ids",
                          "is_multilingual"}) {
    EXPECT_FALSE(config.fields.contains(key)) << key;
  }
  EXPECT_EQ(config.fields["eos_token_id"], 50257);
}

TEST(WhisperGeneration, LengthRule) {
  const WhisperGenerationConfig config = config_of({{"eos_token_id", 3}});
  // max_length 20 by default, plus min(448 / 2 - 1, prompt) prompt tokens.
  EXPECT_EQ(hfport::models::whisper_decoding_limits(config, 4, 448, std::nullopt).total, 24);
  // ... at most max_target_positions.
  EXPECT_EQ(hfport::models::whisper_decoding_limits(config, 4, 22, std::nullopt).total, 22);
  EXPECT_EQ(hfport::models::whisper_decoding_limits(config, 4, 448, 5).total, 9);
  // No pad id: the eos id pads.
  EXPECT_EQ(hfport::models::whisper_decoding_limits(config, 1, 448, 5).pad, 3);
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::models::whisper_decoding_limits(config, 4, 40, 37); },
      {"4 tokens", "max_new_tokens is 37", "max_target_positions 40"}));
}

TEST(WhisperGeneration, FinishedRowsAreTrimmedAsTransformersTrimsThem) {
  using Rows = std::vector<std::vector<int64_t>>;
  // eos 102, pad 100: a row ending in pads loses as many tokens as it holds pads, then its eos.
  EXPECT_EQ(rows_of(hfport::models::whisper_finished_rows({{5, 7, 102, 100, 100}, {1, 2, 3, 4, 5}},
                                                          102, 100)),
            (Rows{{5, 7, 100, 100, 100}, {1, 2, 3, 4, 5}}));
  // A pad inside the row counts too (transformers counts every pad of the row).
  EXPECT_EQ(rows_of(hfport::models::whisper_finished_rows({{100, 5, 102, 100}}, 102, 100)),
            (Rows{{100, 5}}));
  // pad == eos: one pad fewer is dropped, then the eos.
  EXPECT_EQ(rows_of(hfport::models::whisper_finished_rows({{5, 102, 102, 102}, {6, 6, 6, 6}}, 102,
                                                          102)),
            (Rows{{5, 102, 102, 102}, {6, 6, 6, 6}}));
  // Every row finishing at once: nothing left.
  EXPECT_EQ(hfport::models::whisper_finished_rows({{102}, {102}}, 102, 100).shape(),
            (hfport::Shape{2, 0}));
}

TEST(WhisperGeneration, ErrorsNameTheConfigAndTheValue) {
  const auto none = [](int64_t, const std::vector<int64_t>&) { return std::vector<int64_t>{}; };
  EXPECT_TRUE(throws_exactly<hfport::ConfigError>(
      [&] {
        hfport::models::whisper_decoder_prompt(config_of({{"eos_token_id", 1}}),
                                               WhisperGenerationOptions{}, 1, none);
      },
      {"generation_config.json of 'tiny'", "decoder_start_token_id"}));
  nlohmann::json timestamps = multilingual();
  timestamps["return_timestamps"] = true;
  EXPECT_TRUE(throws_exactly<hfport::ConfigError>(
      [&] {
        hfport::models::whisper_decoder_prompt(config_of(timestamps), WhisperGenerationOptions{},
                                               1, none);
      },
      {"return_timestamps"}));
  WhisperGenerationOptions options;
  options.language = "xx";
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::models::whisper_decoder_prompt(config_of(multilingual()), options, 1, none); },
      {"'xx'", "lang_to_id"}));
  options.language = "en";
  options.task = "summarize";
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::models::whisper_decoder_prompt(config_of(multilingual()), options, 1, none); },
      {"'transcribe' or 'translate'", "'summarize'"}));
  EXPECT_TRUE(throws_exactly<hfport::ConfigError>(
      [&] {
        hfport::models::whisper_decoding_limits(config_of({{"suppress_tokens", "x"}}), 1, 40,
                                                std::nullopt);
      },
      {"suppress_tokens", "\"x\""}));
}

}  // namespace
