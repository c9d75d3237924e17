// The native Mamba and GPT-2 models from C++ alone: a tiny checkpoint in transformers' names
// (random values from a fixed seed) and a config.json are written to a temp folder, loaded with
// load_model, and the decode cache is checked against the full forward: feeding the tokens a few
// at a time (a prompt shorter than the conv kernel, then one by one, then a chunk) must give the
// logits one forward over the whole sequence gives. Parity with transformers itself is the Python
// suite's job (tests/python/test_model_mamba_gpt2.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors_writer.h"
#include "expect_error.h"
#include "model_test_support.h"
#include "models/model.h"
#include "test_files.h"

namespace {

using hfport::DType;
using hfport::Tensor;
using hfport_test::TempDir;

constexpr int64_t kVocab = 40, kHidden = 16, kInner = 32, kState = 6, kDtRank = 3, kKernel = 4;
constexpr int64_t kLayers = 2;

class TensorMaker {
 public:
  explicit TensorMaker(unsigned seed) : rng_(seed) {}
  void add(const std::string& name, hfport::Shape shape, float scale, float offset) {
    Tensor t = Tensor::empty(DType::F32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = offset + scale * normal_(rng_);
    tensors_.emplace_back(name, t);
  }
  const std::vector<std::pair<std::string, Tensor>>& tensors() const { return tensors_; }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> normal_{0.0f, 1.0f};
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

float inverse_sqrt(int64_t n) { return 1.0f / std::sqrt(static_cast<float>(n)); }

// MambaForCausalLM with the head tied to the embeddings (no lm_head.weight in the file).
void write_mamba(const TempDir& dir) {
  TensorMaker make(1234);
  make.add("backbone.embeddings.weight", {kVocab, kHidden}, 1.0f, 0.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    make.add(p + "norm.weight", {kHidden}, 0.2f, 1.0f);
    make.add(p + "mixer.in_proj.weight", {2 * kInner, kHidden}, inverse_sqrt(kHidden), 0.0f);
    make.add(p + "mixer.conv1d.weight", {kInner, 1, kKernel}, inverse_sqrt(kKernel), 0.0f);
    make.add(p + "mixer.conv1d.bias", {kInner}, 0.2f, 0.0f);
    make.add(p + "mixer.x_proj.weight", {kDtRank + 2 * kState, kInner}, inverse_sqrt(kInner), 0.0f);
    make.add(p + "mixer.dt_proj.weight", {kInner, kDtRank}, inverse_sqrt(kDtRank), 0.0f);
    make.add(p + "mixer.dt_proj.bias", {kInner}, 0.5f, -2.0f);
    make.add(p + "mixer.A_log", {kInner, kState}, 0.3f, 1.0f);
    make.add(p + "mixer.D", {kInner}, 0.2f, 1.0f);
    make.add(p + "mixer.out_proj.weight", {kHidden, kInner}, inverse_sqrt(kInner), 0.0f);
  }
  make.add("backbone.norm_f.weight", {kHidden}, 0.2f, 1.0f);
  hfport::write_safetensors(dir / "model.safetensors", make.tensors());
  const nlohmann::json config = {
      {"model_type", "mamba"}, {"architectures", {"MambaForCausalLM"}}, {"vocab_size", kVocab},
      {"hidden_size", kHidden}, {"intermediate_size", kInner}, {"state_size", kState},
      {"num_hidden_layers", kLayers}, {"conv_kernel", kKernel}, {"time_step_rank", kDtRank},
      {"layer_norm_epsilon", 1e-5}, {"use_bias", false}, {"use_conv_bias", true},
      {"hidden_act", "silu"}, {"tie_word_embeddings", true}};
  std::ofstream(dir / "config.json") << config.dump();
}

// GPT2LMHeadModel, tied head; Conv1D weights are [in, out] as GPT-2 stores them.
void write_gpt2(const TempDir& dir) {
  constexpr int64_t kInnerMlp = 24, kPositions = 32;
  TensorMaker make(99);
  make.add("transformer.wte.weight", {kVocab, kHidden}, 1.0f, 0.0f);
  make.add("transformer.wpe.weight", {kPositions, kHidden}, 1.0f, 0.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    make.add(p + "ln_1.weight", {kHidden}, 0.2f, 1.0f);
    make.add(p + "ln_1.bias", {kHidden}, 0.2f, 0.0f);
    make.add(p + "attn.c_attn.weight", {kHidden, 3 * kHidden}, inverse_sqrt(kHidden), 0.0f);
    make.add(p + "attn.c_attn.bias", {3 * kHidden}, 0.2f, 0.0f);
    make.add(p + "attn.c_proj.weight", {kHidden, kHidden}, inverse_sqrt(kHidden), 0.0f);
    make.add(p + "attn.c_proj.bias", {kHidden}, 0.2f, 0.0f);
    make.add(p + "ln_2.weight", {kHidden}, 0.2f, 1.0f);
    make.add(p + "ln_2.bias", {kHidden}, 0.2f, 0.0f);
    make.add(p + "mlp.c_fc.weight", {kHidden, kInnerMlp}, inverse_sqrt(kHidden), 0.0f);
    make.add(p + "mlp.c_fc.bias", {kInnerMlp}, 0.2f, 0.0f);
    make.add(p + "mlp.c_proj.weight", {kInnerMlp, kHidden}, inverse_sqrt(kInnerMlp), 0.0f);
    make.add(p + "mlp.c_proj.bias", {kHidden}, 0.2f, 0.0f);
  }
  make.add("transformer.ln_f.weight", {kHidden}, 0.2f, 1.0f);
  make.add("transformer.ln_f.bias", {kHidden}, 0.2f, 0.0f);
  hfport::write_safetensors(dir / "model.safetensors", make.tensors());
  const nlohmann::json config = {
      {"model_type", "gpt2"}, {"architectures", {"GPT2LMHeadModel"}}, {"vocab_size", kVocab},
      {"n_embd", kHidden}, {"n_layer", kLayers}, {"n_head", 4}, {"n_inner", kInnerMlp},
      {"n_positions", kPositions}, {"layer_norm_epsilon", 1e-5},
      {"activation_function", "gelu_new"}, {"tie_word_embeddings", true}};
  std::ofstream(dir / "config.json") << config.dump();
}

using hfport_test::ids_tensor;

class CacheTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CacheTest, FeedingTokensThroughTheCacheEqualsOneFullForward) {
  const std::string family = GetParam();
  TempDir dir;
  if (family == "mamba") write_mamba(dir);
  else write_gpt2(dir);
  auto model = hfport::models::load_model(dir.path().string());
  EXPECT_EQ(model->family(), family);

  // A prompt of 3 (shorter than the conv kernel, so the kept conv inputs start with zeros), five
  // single tokens, then a chunk of 4 through the step path; GPT-2's cache grows on the way.
  hfport_test::expect_cache_matches_full_forward(
      *model, 2, 12, kVocab, {{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 12}});
}

INSTANTIATE_TEST_SUITE_P(MambaGpt2, CacheTest, ::testing::Values("mamba", "gpt2"),
                         [](const auto& info) { return info.param; });

TEST(MambaModel, ErrorsNameWhatIsWrong) {
  TempDir dir;
  write_mamba(dir);
  auto model = hfport::models::load_model(dir.path().string());
  auto cache = model->new_cache(2, 8);
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward_cached(ids_tensor(1, {1, 2}), *cache); },
      {"input_ids has batch 1", "made for 2"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward(ids_tensor(1, {1, kVocab}), Tensor(), false); },
      {"input_ids[0, 1] = 40", "outside the vocabulary [0, 40)"}));
}

}  // namespace
