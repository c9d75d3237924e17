// The native recurrent models (Mamba-2, RWKV-4) from C++ alone: a tiny checkpoint in transformers' names
// (random values from a fixed seed) and a config.json are written to a temp folder, loaded with
// load_model, and the decode cache is checked against the full forward: feeding the tokens a few
// at a time (a prompt shorter than the conv kernel, single tokens, then a chunk of several, which
// continues the chunked scan from the cached state) must give the logits of one forward over the
// whole sequence. Parity with transformers is the Python suite's job
// (tests/python/test_model_mamba2.py, test_model_rwkv.py).
#include <gtest/gtest.h>

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

// Named tensors of normal values * scale + offset from one seeded generator.
class CheckpointTensors {
 public:
  explicit CheckpointTensors(unsigned seed) : rng_(seed) {}
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

constexpr int64_t kVocab = 40, kLayers = 2;

namespace mamba2 {
constexpr int64_t kHidden = 16, kHeads = 4, kHeadDim = 8, kGroups = 2, kState = 6, kKernel = 4;
constexpr int64_t kInner = kHeads * kHeadDim, kConvDim = kInner + 2 * kGroups * kState;

// Mamba2ForCausalLM with its own head, chunk_size 3 (a 12-token prompt crosses four chunks).
void write(const TempDir& dir) {
  CheckpointTensors make(4321);
  make.add("backbone.embeddings.weight", {kVocab, kHidden}, 1.0f, 0.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    make.add(p + "norm.weight", {kHidden}, 0.2f, 1.0f);
    make.add(p + "mixer.in_proj.weight", {kInner + kConvDim + kHeads, kHidden},
             inverse_sqrt(kHidden), 0.0f);
    make.add(p + "mixer.conv1d.weight", {kConvDim, 1, kKernel}, inverse_sqrt(kKernel), 0.0f);
    make.add(p + "mixer.conv1d.bias", {kConvDim}, 0.2f, 0.0f);
    make.add(p + "mixer.dt_bias", {kHeads}, 0.5f, -2.0f);
    make.add(p + "mixer.A_log", {kHeads}, 0.3f, 1.0f);
    make.add(p + "mixer.D", {kHeads}, 0.2f, 1.0f);
    make.add(p + "mixer.norm.weight", {kInner}, 0.2f, 1.0f);
    make.add(p + "mixer.out_proj.weight", {kHidden, kInner}, inverse_sqrt(kInner), 0.0f);
  }
  make.add("backbone.norm_f.weight", {kHidden}, 0.2f, 1.0f);
  make.add("lm_head.weight", {kVocab, kHidden}, inverse_sqrt(kHidden), 0.0f);
  hfport::write_safetensors(dir.path() / "model.safetensors", make.tensors());
  const nlohmann::json config = {
      {"model_type", "mamba2"}, {"architectures", {"Mamba2ForCausalLM"}}, {"vocab_size", kVocab},
      {"hidden_size", kHidden}, {"num_heads", kHeads}, {"head_dim", kHeadDim},
      {"n_groups", kGroups}, {"state_size", kState}, {"expand", 2},
      {"num_hidden_layers", kLayers}, {"conv_kernel", kKernel}, {"chunk_size", 3},
      {"layer_norm_epsilon", 1e-5}, {"use_bias", false}, {"use_conv_bias", true},
      {"hidden_act", "silu"}, {"tie_word_embeddings", false},
      {"time_step_limit", {0.0, {{"__float__", "Infinity"}}}}};
  std::ofstream(dir.path() / "config.json") << config.dump();
}
}  // namespace mamba2

namespace rwkv {
constexpr int64_t kHidden = 16, kAttention = 12, kFfn = 24;

// RwkvForCausalLM with attention narrower than hidden and the rescaling every block.
void write(const TempDir& dir) {
  CheckpointTensors make(777);
  make.add("rwkv.embeddings.weight", {kVocab, kHidden}, 1.0f, 0.0f);
  make.add("rwkv.blocks.0.pre_ln.weight", {kHidden}, 0.2f, 1.0f);
  make.add("rwkv.blocks.0.pre_ln.bias", {kHidden}, 0.2f, 0.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = "rwkv.blocks." + std::to_string(i) + ".";
    for (const char* ln : {"ln1", "ln2"}) {
      make.add(p + ln + ".weight", {kHidden}, 0.2f, 1.0f);
      make.add(p + ln + ".bias", {kHidden}, 0.2f, 0.0f);
    }
    for (const char* mix : {"time_mix_key", "time_mix_value", "time_mix_receptance"}) {
      make.add(p + "attention." + mix, {1, 1, kHidden}, 0.2f, 0.5f);
    }
    make.add(p + "attention.time_decay", {kAttention}, 1.0f, -1.0f);
    make.add(p + "attention.time_first", {kAttention}, 0.5f, 0.0f);
    for (const char* proj : {"key", "value", "receptance"}) {
      make.add(p + "attention." + proj + ".weight", {kAttention, kHidden}, inverse_sqrt(kHidden),
               0.0f);
    }
    make.add(p + "attention.output.weight", {kHidden, kAttention}, inverse_sqrt(kAttention), 0.0f);
    for (const char* mix : {"time_mix_key", "time_mix_receptance"}) {
      make.add(p + "feed_forward." + mix, {1, 1, kHidden}, 0.2f, 0.5f);
    }
    make.add(p + "feed_forward.key.weight", {kFfn, kHidden}, inverse_sqrt(kHidden), 0.0f);
    make.add(p + "feed_forward.receptance.weight", {kHidden, kHidden}, inverse_sqrt(kHidden), 0.0f);
    make.add(p + "feed_forward.value.weight", {kHidden, kFfn}, inverse_sqrt(kFfn), 0.0f);
  }
  make.add("rwkv.ln_out.weight", {kHidden}, 0.2f, 1.0f);
  make.add("rwkv.ln_out.bias", {kHidden}, 0.2f, 0.0f);
  make.add("head.weight", {kVocab, kHidden}, inverse_sqrt(kHidden), 0.0f);
  hfport::write_safetensors(dir.path() / "model.safetensors", make.tensors());
  const nlohmann::json config = {
      {"model_type", "rwkv"}, {"architectures", {"RwkvForCausalLM"}}, {"vocab_size", kVocab},
      {"hidden_size", kHidden}, {"attention_hidden_size", kAttention},
      {"intermediate_size", kFfn}, {"num_hidden_layers", kLayers}, {"layer_norm_epsilon", 1e-5},
      {"rescale_every", 1}, {"tie_word_embeddings", false}};
  std::ofstream(dir.path() / "config.json") << config.dump();
}
}  // namespace rwkv

using hfport_test::ids_tensor;

TEST(Mamba2Model, FeedingTokensThroughTheCacheEqualsOneFullForward) {
  TempDir dir;
  mamba2::write(dir);
  auto model = hfport::models::load_model(dir.path().string());
  EXPECT_EQ(model->family(), "mamba2");
  // A prompt of 3 (shorter than the conv kernel), five single tokens (ssd_state_update), then a
  // chunk of 4 (ssd_scan from the cached state, across chunk boundaries).
  hfport_test::expect_cache_matches_full_forward(
      *model, 2, 12, kVocab, {{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 12}});
  // A long prompt first, then single steps.
  hfport_test::expect_cache_matches_full_forward(*model, 1, 10, kVocab, {{0, 8}, {8, 9}, {9, 10}});
}

TEST(Mamba2Model, ErrorsNameWhatIsWrong) {
  TempDir dir;
  mamba2::write(dir);
  auto model = hfport::models::load_model(dir.path().string());
  auto cache = model->new_cache(2, 8);
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward_cached(ids_tensor(1, {1, 2}), *cache); },
      {"native mamba2 model: input_ids has batch 1", "made for 2"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->new_cache(0, 8); }, {"native mamba2 model: cache batch must be >= 1, got 0"}));

  // A time_step_limit that is not [min, max] is a ConfigError naming the field.
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir.path() / "config.json"));
  config["time_step_limit"] = {0.0, "inf"};
  std::ofstream(dir.path() / "config.json") << config.dump();
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ConfigError>(
      [&] { hfport::models::load_model(dir.path().string()); },
      {"'time_step_limit' must hold two numbers", "\"inf\""}));
}

TEST(RwkvModel, FeedingTokensThroughTheCacheEqualsOneFullForward) {
  TempDir dir;
  rwkv::write(dir);
  auto model = hfport::models::load_model(dir.path().string());
  EXPECT_EQ(model->family(), "rwkv");
  // A prompt of 3, five single tokens (rwkv_wkv_update), then a chunk of 4 from the cached state.
  hfport_test::expect_cache_matches_full_forward(
      *model, 2, 12, kVocab, {{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 12}});
  hfport_test::expect_cache_matches_full_forward(*model, 1, 10, kVocab, {{0, 1}, {1, 9}, {9, 10}});
}

TEST(RwkvModel, ErrorsNameWhatIsWrong) {
  TempDir dir;
  rwkv::write(dir);
  auto model = hfport::models::load_model(dir.path().string());
  auto cache = model->new_cache(2, 8);
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward_cached(ids_tensor(1, {1, 2}), *cache); },
      {"native rwkv model: input_ids has batch 1", "made for 2"}));
  // A mask over the cached and the new tokens must cover both.
  Tensor short_mask = Tensor::zeros(DType::I64, {2, 1});
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { model->forward_cached(ids_tensor(2, {1, 2, 3, 4}), short_mask, *cache); },
      {"native rwkv model: the attention_mask of a cached step covers the 0 cached tokens and "
       "the 2 new ones, [2, 2], got [2, 1]"}));
}

}  // namespace
