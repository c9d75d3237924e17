// rope() against rope_reference() (float64) on fresh random inputs and tables: half-split and
// interleaved, partial rotary, GQA head counts, both layouts, per-batch tables, f32/f16/bf16, in
// place; outputs poisoned with NaN before the kernel runs (through rope_cpu). rope_config_from_json
// and rope_frequencies on configs whose answers are written here from the formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cast.h"
#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "kernels/cpu/rope.h"
#include "ops/rope.h"

namespace {

using hfport::AttentionLayout;
using hfport::DType;
using hfport::RopeOptions;
using hfport::Shape;
using hfport::Tensor;

std::mt19937& rng() {
  static std::mt19937 engine{std::random_device{}()};
  return engine;
}

Tensor random_tensor(DType dtype, const Shape& shape, float lo = -2.0f, float hi = 2.0f) {
  Tensor f32 = Tensor::empty(DType::F32, shape);
  std::uniform_real_distribution<float> uniform(lo, hi);
  for (int64_t i = 0; i < f32.numel(); ++i) f32.data_as<float>()[i] = uniform(rng());
  return hfport::cast(f32, dtype);
}

double rel_l2(const Tensor& got, const Tensor& want) {
  const Tensor g = hfport::cast(got.contiguous(), DType::F64);
  const Tensor w = hfport::cast(want.contiguous(), DType::F64);
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double d = g.data_as<double>()[i] - w.data_as<double>()[i];
    num += d * d;
    den += w.data_as<double>()[i] * w.data_as<double>()[i];
  }
  return std::isnan(num) ? std::numeric_limits<double>::infinity() : std::sqrt(num / den);
}

// cos/sin of random angles: [table_batch, S, width] (table_batch 0: [S, width]).
std::pair<Tensor, Tensor> random_table(int64_t table_batch, int64_t seq, int64_t width, DType dtype) {
  const Shape shape = table_batch ? Shape{table_batch, seq, width} : Shape{seq, width};
  const Tensor angles = random_tensor(DType::F32, shape, -3.2f, 3.2f);
  Tensor c = Tensor::empty(DType::F32, shape), s = Tensor::empty(DType::F32, shape);
  for (int64_t i = 0; i < angles.numel(); ++i) {
    c.data_as<float>()[i] = std::cos(angles.data_as<float>()[i]);
    s.data_as<float>()[i] = std::sin(angles.data_as<float>()[i]);
  }
  return {hfport::cast(c, dtype), hfport::cast(s, dtype)};
}

struct Case {
  int64_t batch, q_heads, k_heads, seq, head_dim, rotary, width, table_batch;
  bool interleaved;
  AttentionLayout layout;
  DType dtype;
};

void check_case(const Case& c) {
  SCOPED_TRACE("H" + std::to_string(c.q_heads) + "/" + std::to_string(c.k_heads) + " S" +
               std::to_string(c.seq) + " D" + std::to_string(c.head_dim) + " R" +
               std::to_string(c.rotary) + " W" + std::to_string(c.width) +
               (c.interleaved ? " interleaved" : " half-split"));
  auto shape = [&](int64_t heads) {
    return c.layout == AttentionLayout::BHSD ? Shape{c.batch, heads, c.seq, c.head_dim}
                                             : Shape{c.batch, c.seq, heads, c.head_dim};
  };
  const Tensor q = random_tensor(c.dtype, shape(c.q_heads));
  const Tensor k = random_tensor(c.dtype, shape(c.k_heads));
  const auto [cos, sin] = random_table(c.table_batch, c.seq, c.width, c.dtype);
  RopeOptions options;
  options.interleaved = c.interleaved;
  options.rotary_dim = c.rotary;
  options.layout = c.layout;
  const hfport::RopeResult want = hfport::rope_reference(q, k, cos, sin, options);
  const double tol = c.dtype == DType::F32 ? 1e-6 : 1e-2;
  const hfport::RopeResult got = hfport::rope(q, k, cos, sin, options);
  EXPECT_LT(rel_l2(got.q, want.q), tol);
  EXPECT_LT(rel_l2(got.k, want.k), tol);
  // in place, on copies
  const Tensor q2 = q.clone(), k2 = k.clone();
  options.inplace = true;
  hfport::rope(q2, k2, cos, sin, options);
  EXPECT_LT(rel_l2(q2, want.q), tol);
  EXPECT_LT(rel_l2(k2, want.k), tol);
}

TEST(Rope, MatchesReference) {
  const auto BHSD = AttentionLayout::BHSD;
  const auto BSHD = AttentionLayout::BSHD;
  for (const Case& c : std::vector<Case>{
           {2, 8, 2, 13, 64, 64, 64, 0, false, BHSD, DType::F32},
           {2, 8, 2, 13, 64, 64, 32, 2, true, BSHD, DType::F32},
           {1, 3, 1, 9, 80, 32, 32, 1, false, BHSD, DType::F32},   // partial rotary
           {1, 3, 3, 9, 80, 20, 10, 0, true, BSHD, DType::F32},    // partial, half-width table
           {2, 4, 2, 11, 128, 128, 128, 2, false, BSHD, DType::BF16},
           {1, 4, 1, 6, 96, 64, 64, 0, true, BHSD, DType::F16},
       }) {
    check_case(c);
  }
}

TEST(Rope, KernelWritesEveryOutputElement) {
  const Tensor x = random_tensor(DType::F32, {2, 3, 7, 48});
  const auto [cos, sin] = random_table(0, 7, 16, DType::F32);
  Tensor out = Tensor::empty(DType::F32, x.shape());
  for (int64_t i = 0; i < out.numel(); ++i) out.data_as<float>()[i] = std::nanf("");
  hfport::RopeParams p;
  p.batch = 2, p.heads = 3, p.seq = 7, p.head_dim = 48, p.rotary_dim = 32;
  p.x = x.data(), p.out = out.data(), p.cos = cos.data(), p.sin = sin.data();
  for (int i = 0; i < 3; ++i) p.x_stride[i] = p.out_stride[i] = x.strides()[i];
  p.table_stride[0] = 0;
  p.table_stride[1] = 16;
  hfport::rope_cpu(p);
  RopeOptions options;
  options.rotary_dim = 32;
  const hfport::RopeResult want = hfport::rope_reference(x, Tensor(), cos, sin, options);
  EXPECT_LT(rel_l2(out, want.q), 1e-6);
}

TEST(Rope, DefaultAndLinearFrequenciesFromTheFormula) {
  const auto config = hfport::rope_config_from_json(nlohmann::json::parse(R"({
    "hidden_size": 512, "num_attention_heads": 8, "max_position_embeddings": 2048,
    "rope_parameters": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0}})"));
  EXPECT_EQ(config.head_dim, 64);
  const hfport::RopeFrequencies freqs = hfport::rope_frequencies(config);
  ASSERT_EQ(freqs.inv_freq.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    const double want = 1.0 / std::pow(500000.0, 2.0 * i / 64.0) / 4.0;
    EXPECT_NEAR(freqs.inv_freq[i], want, 1e-6 * want) << i;
  }
  EXPECT_EQ(freqs.attention_scaling, 1.0f);
}

TEST(Rope, YarnAttentionFactorFromTheFormula) {
  const auto config = hfport::rope_config_from_json(nlohmann::json::parse(R"({
    "head_dim": 32, "max_position_embeddings": 8192,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}})"));
  const hfport::RopeFrequencies freqs = hfport::rope_frequencies(config);
  EXPECT_NEAR(freqs.attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-6);
  // the highest frequency is extrapolated (unchanged), the lowest interpolated (divided by 4)
  EXPECT_NEAR(freqs.inv_freq[0], 1.0, 1e-7);
  const double lowest = 1.0 / std::pow(10000.0, 30.0 / 32.0) / 4.0;
  EXPECT_NEAR(freqs.inv_freq[15], lowest, 1e-6 * lowest);
}

TEST(Rope, TableRowsArePositionsTimesFrequencies) {
  const auto config = hfport::rope_config_from_json(
      nlohmann::json::parse(R"({"head_dim": 16, "rope_theta": 10000.0})"));
  Tensor positions = Tensor::empty(DType::I64, {3});
  const int64_t values[3] = {0, 5, 1000};
  for (int i = 0; i < 3; ++i) positions.data_as<int64_t>()[i] = values[i];
  const hfport::RopeTable table = hfport::rope_table(config, positions);
  ASSERT_EQ(table.cos.shape(), (Shape{3, 16}));
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 8; ++i) {
      const double angle = values[r] * (1.0 / std::pow(10000.0, 2.0 * i / 16.0));
      for (int half = 0; half < 2; ++half) {
        EXPECT_NEAR(table.cos.data_as<float>()[r * 16 + half * 8 + i], std::cos(angle), 1e-4);
        EXPECT_NEAR(table.sin.data_as<float>()[r * 16 + half * 8 + i], std::sin(angle), 1e-4);
      }
    }
  }
}

TEST(Rope, ErrorsNameTheField) {
  using hfport_test::throws_exactly;
  EXPECT_TRUE(throws_exactly<hfport::ConfigError>(
      [] {
        hfport::rope_config_from_json(nlohmann::json::parse(
            R"({"head_dim": 16, "max_position_embeddings": 4096,
                "rope_parameters": {"rope_type": "llama3", "factor": 8.0}})"));
      },
      {"'llama3'", "'low_freq_factor'"}));
  const Tensor q = random_tensor(DType::F32, {1, 2, 4, 16});
  const auto [odd_cos, odd_sin] = random_table(0, 4, 7, DType::F32);
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::rope(q, q, odd_cos, odd_sin); },
                                            {"rotary_dim must be even", "got 7"}));
  const auto [cos, sin] = random_table(0, 4, 12, DType::F32);
  RopeOptions options;
  options.rotary_dim = 16;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::rope(q, q, cos, sin, options); },
                                            {"cos/sin have 12 features; rotary_dim 16"}));
}

}  // namespace
