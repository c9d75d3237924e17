// The native LLaMA family from C++ alone: a tiny checkpoint in transformers' names (random values
// from a fixed seed) and a config.json are written to a temp folder, loaded with load_model, and
// the cache is checked against the full forward: feeding the tokens a few at a time (prompt, then
// one by one, then a chunk) must give the logits one forward over the whole sequence gives, for
// llama (GQA), mistral with a sliding window shorter than the sequence, and qwen3 (q/k norms).
// Parity with transformers itself is the Python suite's job (tests/python/test_model_llama.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors_writer.h"
#include "models/model.h"
#include "expect_error.h"
#include "model_test_support.h"
#include "test_files.h"

namespace {

using hfport::DType;
using hfport::Tensor;
using hfport_test::TempDir;

constexpr int64_t kVocab = 40, kHidden = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8;
constexpr int64_t kIntermediate = 48, kLayers = 2;

struct TinyCheckpoint {
  TempDir dir;

  // `family`: "llama", "mistral" or "qwen3"; `window` is written as config.sliding_window.
  explicit TinyCheckpoint(const std::string& family, int64_t window = 0) {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<std::pair<std::string, Tensor>> tensors;
    auto add = [&](const std::string& name, hfport::Shape shape, float scale, float offset) {
      Tensor t = Tensor::empty(DType::F32, shape);
      for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = offset + scale * normal(rng);
      tensors.emplace_back(name, t);
    };
    const float in_scale = 1.0f / std::sqrt(static_cast<float>(kHidden));
    add("model.embed_tokens.weight", {kVocab, kHidden}, 1.0f, 0.0f);
    for (int64_t i = 0; i < kLayers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      add(p + "input_layernorm.weight", {kHidden}, 0.2f, 1.0f);
      add(p + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}, in_scale, 0.0f);
      add(p + "self_attn.k_proj.weight", {kKvHeads * kHeadDim, kHidden}, in_scale, 0.0f);
      add(p + "self_attn.v_proj.weight", {kKvHeads * kHeadDim, kHidden}, in_scale, 0.0f);
      add(p + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}, in_scale, 0.0f);
      if (family == "qwen3") {
        add(p + "self_attn.q_norm.weight", {kHeadDim}, 0.2f, 1.0f);
        add(p + "self_attn.k_norm.weight", {kHeadDim}, 0.2f, 1.0f);
      }
      add(p + "post_attention_layernorm.weight", {kHidden}, 0.2f, 1.0f);
      add(p + "mlp.gate_proj.weight", {kIntermediate, kHidden}, in_scale, 0.0f);
      add(p + "mlp.up_proj.weight", {kIntermediate, kHidden}, in_scale, 0.0f);
      add(p + "mlp.down_proj.weight", {kHidden, kIntermediate},
          1.0f / std::sqrt(static_cast<float>(kIntermediate)), 0.0f);
    }
    add("model.norm.weight", {kHidden}, 0.2f, 1.0f);
    add("lm_head.weight", {kVocab, kHidden}, in_scale, 0.0f);
    hfport::write_safetensors(dir / "model.safetensors", tensors);

    nlohmann::json config = {
        {"model_type", family}, {"vocab_size", kVocab}, {"hidden_size", kHidden},
        {"intermediate_size", kIntermediate}, {"num_hidden_layers", kLayers},
        {"num_attention_heads", kHeads}, {"num_key_value_heads", kKvHeads},
        {"head_dim", kHeadDim}, {"rms_norm_eps", 1e-6}, {"hidden_act", "silu"},
        {"max_position_embeddings", 64}, {"tie_word_embeddings", false},
        {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
    if (window > 0) config["sliding_window"] = window;
    std::ofstream(dir / "config.json") << config.dump();
  }
};

using hfport_test::ids_tensor;
using hfport_test::relative_max_error;

class LlamaCacheTest : public ::testing::TestWithParam<std::pair<std::string, int64_t>> {};

TEST_P(LlamaCacheTest, FeedingTokensThroughTheCacheEqualsOneFullForward) {
  const auto& [family, window] = GetParam();
  TinyCheckpoint checkpoint(family, window);
  auto model = hfport::models::load_model(checkpoint.dir.path().string());
  EXPECT_EQ(model->family(), family);

  // A prompt of 3, then 5 single tokens, then a chunk of 3.
  hfport_test::expect_cache_matches_full_forward(
      *model, 2, 11, kVocab, {{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 11}});
}

INSTANTIATE_TEST_SUITE_P(Families, LlamaCacheTest,
                         ::testing::Values(std::make_pair(std::string("llama"), int64_t{0}),
                                           std::make_pair(std::string("mistral"), int64_t{4}),
                                           std::make_pair(std::string("qwen3"), int64_t{0})),
                         [](const auto& info) { return info.param.first; });

TEST(LlamaModel, GenerateIsTheArgmaxChainOfFullForwards) {
  TinyCheckpoint checkpoint("llama");
  auto model = hfport::models::load_model(checkpoint.dir.path().string());
  const Tensor prompt = ids_tensor(1, {5, 17, 2, 33});
  const Tensor generated = model->generate(prompt, 6);
  ASSERT_EQ(generated.shape(), (hfport::Shape{1, 10}));
  std::vector<int64_t> tokens(prompt.data_as<int64_t>(), prompt.data_as<int64_t>() + 4);
  for (int step = 0; step < 6; ++step) {
    const Tensor logits = model->forward(ids_tensor(1, tokens), Tensor(), false).logits;
    const float* last = logits.data_as<float>() + (tokens.size() - 1) * kVocab;
    tokens.push_back(std::max_element(last, last + kVocab) - last);
  }
  EXPECT_EQ(std::vector<int64_t>(generated.data_as<int64_t>(), generated.data_as<int64_t>() + 10),
            tokens);
}

TEST(LlamaModel, ErrorsNameWhatIsWrong) {
  TinyCheckpoint checkpoint("llama");
  auto model = hfport::models::load_model(checkpoint.dir.path().string());
  auto cache = model->new_cache(2, 8);
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward_cached(ids_tensor(1, {1, 2}), *cache); },
      {"native llama model: input_ids has batch 1 but the cache was made for 2"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward(ids_tensor(1, {1, kVocab}), Tensor(), false); },
      {"input_ids[0, 1] = 40 is outside the vocabulary [0, 40)"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward(ids_tensor(1, {1, 2}), ids_tensor(1, {1, 1, 1}), false); },
      {"attention_mask must have input_ids' shape [1, 2], got [1, 3]"}));
}

}  // namespace
