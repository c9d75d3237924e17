// The native BERT-like encoders from C++ alone, built from states made here (random values from a
// fixed seed, already in native names), checked against each other where they must agree:
//   - an ALBERT whose embeddings are hidden_size wide and whose embd_proj is the identity equals a
//     BERT whose layers hold ALBERT's shared blocks in the order AlbertTransformer runs them (one
//     group reused by every layer; two groups over three layers, which float division maps to
//     groups 0, 0, 1), with the masked-LM head on top;
//   - RoBERTa's position ids follow create_position_ids_from_input_ids;
//   - the heads a builder refuses, and the configs it cannot run, say so.
// Parity with transformers itself is the Python suite's job (test_model_encoder_heads.py).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/albert.h"
#include "models/bert.h"
#include "models/encoder_layers.h"
#include "expect_error.h"
#include "model_test_support.h"

namespace {

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using State = std::vector<std::pair<std::string, Tensor>>;

constexpr int64_t kVocab = 30, kHidden = 16, kHeads = 4, kIntermediate = 24, kPositions = 20;

class StateMaker {
 public:
  explicit StateMaker(unsigned seed) : rng_(seed) {}

  // Matrices ~ N(0, 1/in), norm weights around 1, biases ~ N(0, 0.2^2).
  Tensor random(const Shape& shape, float scale, float offset) {
    Tensor t = Tensor::empty(DType::F32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = offset + scale * normal_(rng_);
    return t;
  }
  Tensor matrix(int64_t out, int64_t in) {
    return random({out, in}, 1.0f / std::sqrt(static_cast<float>(in)), 0.0f);
  }
  Tensor bias(int64_t n) { return random({n}, 0.2f, 0.0f); }
  Tensor norm(int64_t n) { return random({n}, 0.2f, 1.0f); }

  // One post-norm block's tensors under `prefix`.
  void block(State& state, const std::string& prefix) {
    state.emplace_back(prefix + "attn_qkv.weight", matrix(3 * kHidden, kHidden));
    state.emplace_back(prefix + "attn_qkv.bias", bias(3 * kHidden));
    state.emplace_back(prefix + "attn_out.weight", matrix(kHidden, kHidden));
    state.emplace_back(prefix + "attn_out.bias", bias(kHidden));
    state.emplace_back(prefix + "attn_out_norm.weight", norm(kHidden));
    state.emplace_back(prefix + "attn_out_norm.bias", bias(kHidden));
    state.emplace_back(prefix + "ffn_up.weight", matrix(kIntermediate, kHidden));
    state.emplace_back(prefix + "ffn_up.bias", bias(kIntermediate));
    state.emplace_back(prefix + "ffn_down.weight", matrix(kHidden, kIntermediate));
    state.emplace_back(prefix + "ffn_down.bias", bias(kHidden));
    state.emplace_back(prefix + "ffn_out_norm.weight", norm(kHidden));
    state.emplace_back(prefix + "ffn_out_norm.bias", bias(kHidden));
  }

  // Embeddings, pooler and a masked-LM head with its decoder tied to the word embeddings.
  void embeddings_and_heads(State& state) {
    const Tensor words = random({kVocab, kHidden}, 1.0f, 0.0f);
    state.emplace_back("tok_embd.weight", words);
    state.emplace_back("pos_embd.weight", random({kPositions, kHidden}, 1.0f, 0.0f));
    state.emplace_back("type_embd.weight", random({2, kHidden}, 1.0f, 0.0f));
    state.emplace_back("embd_norm.weight", norm(kHidden));
    state.emplace_back("embd_norm.bias", bias(kHidden));
    state.emplace_back("pooler.weight", matrix(kHidden, kHidden));
    state.emplace_back("pooler.bias", bias(kHidden));
    state.emplace_back("mlm.dense.weight", matrix(kHidden, kHidden));
    state.emplace_back("mlm.dense.bias", bias(kHidden));
    state.emplace_back("mlm.norm.weight", norm(kHidden));
    state.emplace_back("mlm.norm.bias", bias(kHidden));
    state.emplace_back("mlm.decoder.weight", words);
    state.emplace_back("mlm.decoder.bias", bias(kVocab));
  }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> normal_{0.0f, 1.0f};
};

nlohmann::json encoder_config(int64_t layers) {
  return {{"vocab_size", kVocab}, {"hidden_size", kHidden}, {"num_attention_heads", kHeads},
          {"intermediate_size", kIntermediate}, {"num_hidden_layers", layers},
          {"max_position_embeddings", kPositions}, {"layer_norm_eps", 1e-12},
          {"hidden_act", "gelu_new"}, {"type_vocab_size", 2}};
}

// The ALBERT state with `groups` groups of one block, and the BERT state that runs the same
// computation: its layer i holds the block of the group ALBERT's layer i runs.
std::pair<State, State> albert_and_bert(int64_t groups, const std::vector<int64_t>& group_of_layer) {
  StateMaker make(7);
  State albert;
  make.embeddings_and_heads(albert);
  for (int64_t g = 0; g < groups; ++g) make.block(albert, "grp." + std::to_string(g) + ".blk.0.");
  Tensor identity = Tensor::zeros(DType::F32, {kHidden, kHidden});
  for (int64_t c = 0; c < kHidden; ++c) identity.data_as<float>()[c * kHidden + c] = 1.0f;
  albert.emplace_back("embd_proj.weight", identity);
  albert.emplace_back("embd_proj.bias", Tensor::zeros(DType::F32, {kHidden}));

  State bert;
  for (const auto& [name, tensor] : albert) {
    if (name.rfind("grp.", 0) != 0 && name.rfind("embd_proj.", 0) != 0) bert.emplace_back(name, tensor);
  }
  for (size_t i = 0; i < group_of_layer.size(); ++i) {
    const std::string from = "grp." + std::to_string(group_of_layer[i]) + ".blk.0.";
    for (const auto& [name, tensor] : albert) {
      if (name.rfind(from, 0) == 0) {
        bert.emplace_back("blk." + std::to_string(i) + "." + name.substr(from.size()), tensor);
      }
    }
  }
  return {albert, bert};
}

void expect_albert_runs_bert_layers(int64_t layers, int64_t groups,
                                    const std::vector<int64_t>& group_of_layer) {
  auto [albert_state, bert_state] = albert_and_bert(groups, group_of_layer);
  nlohmann::json albert_config = encoder_config(layers);
  albert_config["embedding_size"] = kHidden;
  albert_config["num_hidden_groups"] = groups;
  albert_config["inner_group_num"] = 1;
  auto albert = hfport::models::build_albert_model(albert_config, albert_state, "masked_lm");
  auto bert = hfport::models::build_bert_model(encoder_config(layers), bert_state, "masked_lm");
  const Tensor ids = hfport_test::ids_tensor(2, {3, 9, 4, 17, 0, 0, 12, 5, 28, 1, 6, 2});
  Tensor mask = Tensor::empty(DType::I64, {2, 6});
  for (int64_t i = 0; i < 12; ++i) mask.data_as<int64_t>()[i] = i == 4 || i == 5 ? 0 : 1;
  const auto a = albert->forward(ids, mask, true);
  const auto b = bert->forward(ids, mask, true);
  ASSERT_EQ(a.hidden_states.size(), static_cast<size_t>(layers + 1));
  ASSERT_EQ(b.hidden_states.size(), a.hidden_states.size());
  for (size_t i = 0; i < a.hidden_states.size(); ++i) {
    EXPECT_LT(hfport_test::relative_max_error(a.hidden_states[i], b.hidden_states[i]), 1e-6f)
        << "hidden state " << i;
  }
  ASSERT_EQ(a.logits.shape(), (Shape{2, 6, kVocab}));
  EXPECT_LT(hfport_test::relative_max_error(a.logits, b.logits), 1e-6f);
  EXPECT_FALSE(a.pooled.defined());  // a head model's output is its logits
}

TEST(ModelEncoders, AlbertWithOneGroupReusesItsBlockInEveryLayer) {
  expect_albert_runs_bert_layers(3, 1, {0, 0, 0});
}

TEST(ModelEncoders, AlbertGroupsFollowTransformersFloatDivision) {
  // int(i / (3 / 2)) for i = 0, 1, 2: groups 0, 0, 1.
  expect_albert_runs_bert_layers(3, 2, {0, 0, 1});
}

TEST(ModelEncoders, BaseModelReturnsLastHiddenStateAndPooledWithoutLogits) {
  auto [albert_state, bert_state] = albert_and_bert(1, {0, 0});
  auto bert = hfport::models::build_bert_model(encoder_config(2), bert_state, "");
  const auto out = bert->forward(hfport_test::ids_tensor(1, {4, 5, 6}), Tensor(), false);
  EXPECT_FALSE(out.logits.defined());
  EXPECT_EQ(out.last_hidden_state.shape(), (Shape{1, 3, kHidden}));
  EXPECT_EQ(out.pooled.shape(), (Shape{1, kHidden}));
  EXPECT_TRUE(out.hidden_states.empty());
}

TEST(ModelEncoders, RobertaPositionIdsSkipPaddingTokens) {
  // padding_idx 1: real tokens count from 2, padding tokens (id 1, wherever they sit) get 1.
  const Tensor ids = hfport_test::ids_tensor(2, {5, 6, 1, 7, 1, 1, 8, 9});
  const Tensor positions = hfport::models::roberta_position_ids(ids, 1);
  const std::vector<int64_t> expected = {2, 3, 1, 4, 1, 1, 2, 3};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(positions.data_as<int64_t>()[i], expected[i]) << "token " << i;
  }
  const Tensor absolute = hfport::models::absolute_position_ids(2, 3);
  EXPECT_EQ(absolute.data_as<int64_t>()[3], 0);
  EXPECT_EQ(absolute.data_as<int64_t>()[5], 2);
}

TEST(ModelEncoders, RobertaRefusesPositionsPastItsTable) {
  auto [albert_state, bert_state] = albert_and_bert(1, {0});
  nlohmann::json config = encoder_config(1);
  config["pad_token_id"] = 1;
  auto roberta = hfport::models::build_roberta_model(config, bert_state, "");
  // 19 real tokens: the last has position 1 + 19 = 20, one past the 20 learned positions.
  std::vector<int64_t> values(19, 4);
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { roberta->forward(hfport_test::ids_tensor(1, values), Tensor(), false); },
      {"native roberta model", "position id 20", "[0, 18]", "20 learned positions"}));
  values.pop_back();
  EXPECT_EQ(roberta->forward(hfport_test::ids_tensor(1, values), Tensor(), false)
                .last_hidden_state.shape(),
            (Shape{1, 18, kHidden}));
}

TEST(ModelEncoders, HeadsAndConfigsTheBuildersCannotRun) {
  auto [albert_state, bert_state] = albert_and_bert(1, {0});
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::Error>(
      [&] { hfport::models::build_bert_model(encoder_config(1), bert_state, "causal_lm"); },
      {"native bert model", "'causal_lm'", "the base model", "'masked_lm'",
       "'sequence_classification'", "'token_classification'"}));

  State no_pooler;
  for (const auto& [name, tensor] : bert_state) {
    if (name.rfind("pooler.", 0) != 0) no_pooler.emplace_back(name, tensor);
  }
  no_pooler.emplace_back("cls.out.weight", StateMaker(3).matrix(2, kHidden));
  no_pooler.emplace_back("cls.out.bias", StateMaker(4).bias(2));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ConfigError>(
      [&] {
        hfport::models::build_bert_model(encoder_config(1), no_pooler, "sequence_classification");
      },
      {"native bert model", "sequence_classification", "no pooler (pooler.weight)"}));
  // RoBERTa's sequence head needs cls.dense, which this state lacks.
  nlohmann::json roberta_config = encoder_config(1);
  roberta_config["pad_token_id"] = 1;
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::Error>(
      [&] {
        hfport::models::build_roberta_model(roberta_config, no_pooler, "sequence_classification");
      },
      {"native roberta model", "'cls.dense.weight' was not loaded"}));
  const auto tokens = hfport::models::build_bert_model(encoder_config(1), no_pooler,
                                                       "token_classification")
                          ->forward(hfport_test::ids_tensor(1, {4, 5, 6}), Tensor(), false);
  EXPECT_EQ(tokens.logits.shape(), (Shape{1, 3, 2}));

  nlohmann::json albert_config = encoder_config(1);
  albert_config["embedding_size"] = kHidden;
  albert_config["num_hidden_groups"] = 1;
  albert_config["inner_group_num"] = 0;
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ConfigError>(
      [&] { hfport::models::build_albert_model(albert_config, albert_state, ""); },
      {"native albert model", "inner_group_num (0)", "at least 1"}));
  albert_config["inner_group_num"] = 1;
  nlohmann::json decoder_config = encoder_config(1);
  decoder_config["is_decoder"] = true;
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ConfigError>(
      [&] { hfport::models::build_bert_model(decoder_config, bert_state, ""); },
      {"native bert model", "is_decoder", "BertLMHeadModel"}));
  albert_config["hidden_act"] = "relu";
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ConfigError>(
      [&] { hfport::models::build_albert_model(albert_config, albert_state, ""); },
      {"native albert model", "hidden_act 'relu'", "gelu_new"}));
}

}  // namespace
