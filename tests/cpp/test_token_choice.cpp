// generate's pieces that need no model: the positions a decoding mask implies (decode_mask.h) and
// the token choice (token_choice.h) on hand-made scores whose answers can be worked out by hand:
// top-k keeping ties, top-p keeping the smallest set that reaches p (and the largest score
// always), the first maximum for greedy, the seeded draw's reproducibility and frequencies.
// Parity with transformers' warpers on random logits is tests/python/test_generate.py's job.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "models/decode_mask.h"
#include "models/token_choice.h"

namespace {

using hfport::Tensor;
using hfport::models::SamplingSettings;

constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor mask_tensor(int64_t batch, const std::vector<uint8_t>& values) {
  const auto width = static_cast<int64_t>(values.size()) / batch;
  Tensor t = Tensor::empty(hfport::DType::U8, {batch, width});
  std::copy(values.begin(), values.end(), t.data_as<uint8_t>());
  return t;
}

std::vector<int64_t> as_vector(const Tensor& t) {
  return {t.data_as<int64_t>(), t.data_as<int64_t>() + t.numel()};
}

TEST(DecodeMask, PositionsCountTheTokensBeforeEachColumn) {
  // Row 0 left padded by two, row 1 none, row 2 with a hole in the middle.
  const Tensor mask = mask_tensor(3, {0, 0, 1, 1, 1,  //
                                      1, 1, 1, 1, 1,  //
                                      1, 0, 1, 1, 1});
  EXPECT_EQ(as_vector(hfport::models::decode_positions(mask, 5)),
            (std::vector<int64_t>{0, 0, 0, 1, 2, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3}));
  // A step's columns only: the last two.
  EXPECT_EQ(as_vector(hfport::models::decode_positions(mask, 2)),
            (std::vector<int64_t>{1, 2, 3, 4, 2, 3}));
  EXPECT_FALSE(hfport::models::last_columns_all_tokens(mask, 5));
  EXPECT_TRUE(hfport::models::last_columns_all_tokens(mask, 3));
}

TEST(DecodeMask, AStepMaskMustCoverTheCacheAndTheNewTokens) {
  const Tensor mask = mask_tensor(2, {1, 1, 1, 1, 1, 1});
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [&] { hfport::models::checked_decode_mask("llama", mask, 2, 4, 1); },
      {"native llama model", "4 cached tokens and the 1 new ones, [2, 5]", "got [2, 3]"}));
  EXPECT_FALSE(hfport::models::checked_decode_mask("llama", Tensor(), 2, 4, 1).defined());
}

TEST(TokenChoice, TopKKeepsTiesWithTheKth) {
  std::vector<double> scores = {1.0, 3.0, 3.0, 2.0, -1.0};
  hfport::models::warp_scores(scores, {1.0, 2, 1.0});
  EXPECT_EQ(scores, (std::vector<double>{-kInf, 3.0, 3.0, -kInf, -kInf}));
  scores = {1.0, 3.0, 3.0, 2.0, -1.0};
  hfport::models::warp_scores(scores, {1.0, 3, 1.0});
  EXPECT_EQ(scores, (std::vector<double>{-kInf, 3.0, 3.0, 2.0, -kInf}));
  scores = {1.0, 3.0};  // k past the vocabulary keeps everything
  hfport::models::warp_scores(scores, {1.0, 50, 1.0});
  EXPECT_EQ(scores, (std::vector<double>{1.0, 3.0}));
}

TEST(TokenChoice, TopPKeepsTheSmallestSetReachingP) {
  const std::vector<double> probabilities = {0.05, 0.5, 0.15, 0.3};
  auto kept_after = [&](double top_p) {
    std::vector<double> scores;
    for (double p : probabilities) scores.push_back(std::log(p));
    hfport::models::warp_scores(scores, {1.0, 0, top_p});
    std::vector<int> kept;
    for (double s : scores) kept.push_back(s == -kInf ? 0 : 1);
    return kept;
  };
  EXPECT_EQ(kept_after(0.75), (std::vector<int>{0, 1, 0, 1}));  // 0.5 + 0.3 >= 0.75
  EXPECT_EQ(kept_after(0.85), (std::vector<int>{0, 1, 1, 1}));  // + 0.15
  EXPECT_EQ(kept_after(0.4), (std::vector<int>{0, 1, 0, 0}));   // 0.5 alone
  EXPECT_EQ(kept_after(1e-9), (std::vector<int>{0, 1, 0, 0}));  // the largest always stays
  EXPECT_EQ(kept_after(1.0), (std::vector<int>{1, 1, 1, 1}));   // off
}

TEST(TokenChoice, TemperatureDividesBeforeFiltering) {
  std::vector<double> scores = {2.0, -4.0, 1.0};
  hfport::models::warp_scores(scores, {0.5, 0, 1.0});
  EXPECT_EQ(scores, (std::vector<double>{4.0, -8.0, 2.0}));
}

TEST(TokenChoice, GreedyTakesTheFirstMaximum) {
  EXPECT_EQ(hfport::models::first_argmax(std::vector<double>{1.0, 5.0, 5.0, 2.0}), 1);
  EXPECT_EQ(hfport::models::first_argmax(std::vector<double>{-kInf, -kInf}), 0);
  std::vector<double> scores = {7.0, 5.0, 7.5};
  hfport::models::suppress_tokens(scores, std::vector<int64_t>{2, 99});  // 99: not in the row
  EXPECT_EQ(hfport::models::first_argmax(scores), 0);
}

TEST(TokenChoice, SoftmaxRefusesARowWithNothingLeft) {
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [] { hfport::models::softmax_probabilities(std::vector<double>{-kInf, -kInf}, 3); },
      {"every token of row 3 was filtered out"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [] { hfport::models::softmax_probabilities(std::vector<double>{0.0, std::nan("")}, 1); },
      {"row 1 hold NaN"}));
  const std::vector<double> p =
      hfport::models::softmax_probabilities(std::vector<double>{0.0, std::log(3.0), -kInf}, 0);
  EXPECT_NEAR(p[0], 0.25, 1e-15);
  EXPECT_NEAR(p[1], 0.75, 1e-15);
  EXPECT_EQ(p[2], 0.0);
}

TEST(TokenChoice, SettingsAreChecked) {
  using hfport::models::check_sampling_settings;
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [] { check_sampling_settings({0.0, 50, 1.0}); },
      {"temperature must be a finite number > 0, got 0", "do_sample=False"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [] { check_sampling_settings({1.0, -2, 1.0}); }, {"top_k must be >= 0", "got -2"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::ArgumentError>(
      [] { check_sampling_settings({1.0, 50, 1.25}); }, {"top_p must be in (0, 1]", "got 1.25"}));
  check_sampling_settings({1e-6, 0, 1e-6});
}

TEST(TokenSampler, OneSeedGivesOneStreamAndTheDrawsFollowTheProbabilities) {
  const std::vector<double> probabilities = {0.1, 0.2, 0.0, 0.7};
  hfport::models::TokenSampler first(42), again(42), other(43);
  std::vector<int64_t> a, b, c;
  for (int i = 0; i < 64; ++i) {
    a.push_back(first.draw(probabilities));
    b.push_back(again.draw(probabilities));
    c.push_back(other.draw(probabilities));
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);

  constexpr int kDraws = 200000;
  std::vector<int> counts(probabilities.size(), 0);
  hfport::models::TokenSampler sampler(7);
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(sampler.draw(probabilities))];
  EXPECT_EQ(counts[2], 0);
  for (size_t v = 0; v < probabilities.size(); ++v) {
    const double p = probabilities[v];
    const double spread = std::sqrt(p * (1 - p) / kDraws);
    EXPECT_NEAR(counts[v] / static_cast<double>(kDraws), p, 5 * spread + 1e-12) << "token " << v;
  }
}

}  // namespace
