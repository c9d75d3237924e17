// attention() against attention_reference() (every score formed, float64) on fresh random inputs
// at odd shapes: query and key counts that are not multiples of the kernel's blocks, head dims
// that are not multiples of the vector width, GQA and MQA, decode (Sq < Sk), Sq > Sk, causal
// masks, sliding windows, key padding, boolean and additive masks, both layouts, f32/f16/bf16.
// The kernel's output is poisoned with NaN before it runs (through attention_cpu), so a row it
// forgets to write fails the comparison.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/cast.h"
#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "kernels/cpu/attention.h"
#include "ops/attention.h"

namespace {

using hfport::AttentionLayout;
using hfport::AttentionOptions;
using hfport::DType;
using hfport::Shape;
using hfport::Tensor;

std::mt19937& rng() {
  static std::mt19937 engine{std::random_device{}()};
  return engine;
}

// A fresh tensor of N(0, 1) values (never zeros), rounded to `dtype`.
Tensor random_tensor(DType dtype, const Shape& shape) {
  Tensor f32 = Tensor::empty(DType::F32, shape);
  std::normal_distribution<float> normal;
  float* data = f32.data_as<float>();
  for (int64_t i = 0; i < f32.numel(); ++i) data[i] = normal(rng());
  return hfport::cast(f32, dtype);
}

double rel_l2(const Tensor& got, const Tensor& want) {
  const Tensor g = hfport::cast(got, DType::F64);
  const Tensor w = hfport::cast(want, DType::F64);
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double d = g.data_as<double>()[i] - w.data_as<double>()[i];
    num += d * d;
    den += w.data_as<double>()[i] * w.data_as<double>()[i];
  }
  if (std::isnan(num)) return std::numeric_limits<double>::infinity();
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

double tolerance(DType dtype) { return dtype == DType::F32 ? 1e-5 : 1e-2; }

struct Case {
  int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim, v_dim;
  bool causal;
  int64_t window;  // 0: none
  bool padding;
  AttentionLayout layout;
  DType dtype;
};

Shape dims(const Case& c, int64_t heads, int64_t seq, int64_t dim) {
  return c.layout == AttentionLayout::BHSD ? Shape{c.batch, heads, seq, dim}
                                           : Shape{c.batch, seq, heads, dim};
}

void check_case(const Case& c) {
  SCOPED_TRACE("B" + std::to_string(c.batch) + " H" + std::to_string(c.q_heads) + "/" +
               std::to_string(c.kv_heads) + " S" + std::to_string(c.q_len) + "x" +
               std::to_string(c.kv_len) + " D" + std::to_string(c.head_dim) + "/" +
               std::to_string(c.v_dim) + (c.causal ? " causal" : "") + " window " +
               std::to_string(c.window) + (c.padding ? " padded" : "") + " " +
               std::string(hfport::dtype_name(c.dtype)));
  const Tensor q = random_tensor(c.dtype, dims(c, c.q_heads, c.q_len, c.head_dim));
  const Tensor k = random_tensor(c.dtype, dims(c, c.kv_heads, c.kv_len, c.head_dim));
  const Tensor v = random_tensor(c.dtype, dims(c, c.kv_heads, c.kv_len, c.v_dim));
  AttentionOptions options;
  options.causal = c.causal;
  options.layout = c.layout;
  options.return_lse = true;
  if (c.window > 0) options.sliding_window = c.window;
  if (c.padding) {
    options.key_padding_mask = Tensor::empty(DType::BOOL, {c.batch, c.kv_len});
    auto* keep = options.key_padding_mask.data_as<uint8_t>();
    std::bernoulli_distribution coin(0.8);
    for (int64_t i = 0; i < c.batch * c.kv_len; ++i) keep[i] = coin(rng()) ? 1 : 0;
  }
  const hfport::AttentionResult got = hfport::attention(q, k, v, options);
  const hfport::AttentionResult want = hfport::attention_reference(q, k, v, options);
  EXPECT_EQ(got.out.shape(), want.out.shape());
  EXPECT_EQ(got.out.dtype(), c.dtype);
  EXPECT_LT(rel_l2(got.out, want.out), tolerance(c.dtype));
  // logsumexp: finite entries close, -inf entries (rows that see no key) identical
  const auto* lse = got.lse.data_as<float>();
  const auto* lse_want = want.lse.data_as<double>();
  for (int64_t i = 0; i < got.lse.numel(); ++i) {
    if (std::isinf(lse_want[i])) {
      EXPECT_EQ(lse[i], -std::numeric_limits<float>::infinity()) << "row " << i;
    } else {
      EXPECT_NEAR(lse[i], lse_want[i], 1e-4 * (1.0 + std::fabs(lse_want[i]))) << "row " << i;
    }
  }
}

constexpr auto BHSD = AttentionLayout::BHSD;
constexpr auto BSHD = AttentionLayout::BSHD;

TEST(Attention, MatchesReferenceAtOddShapes) {
  for (const Case& c : std::vector<Case>{
           {1, 1, 1, 1, 1, 1, 1, false, 0, false, BHSD, DType::F32},
           {2, 3, 3, 67, 67, 33, 33, false, 0, false, BHSD, DType::F32},
           {1, 4, 4, 130, 130, 64, 64, true, 0, false, BSHD, DType::F32},
           {2, 2, 2, 29, 150, 80, 48, false, 0, false, BHSD, DType::F32},  // Dv != D
           {1, 2, 2, 257, 257, 17, 23, true, 0, false, BSHD, DType::F32},
       }) {
    check_case(c);
  }
}

// Every kernel set this CPU has (AVX-512, AVX2, plain loops) on a few of the cases above.
TEST(Attention, EveryKernelSetMatchesReference) {
  for (const char* set : {"plain", "avx2", "best"}) {
    SCOPED_TRACE(set);
    setenv("HFPORT_ATTENTION_KERNELS", set, 1);
    check_case({2, 3, 1, 67, 67, 33, 21, true, 0, false, BHSD, DType::F32});
    check_case({1, 4, 2, 9, 140, 80, 80, true, 50, true, BSHD, DType::F32});
    check_case({1, 2, 2, 30, 30, 64, 64, false, 0, false, BHSD, DType::BF16});
    // Up to 64 query rows per kv head: k read in place (qk_in_place), with depth and key-count
    // tails, widened f16/bf16 blocks, GQA, padding and a window; then a bf16 call just past it
    // (packed k^T).
    check_case({1, 2, 1, 65, 65, 64, 64, true, 0, false, BHSD, DType::BF16});
    check_case({2, 4, 2, 1, 301, 33, 21, true, 0, true, BSHD, DType::F32});
    check_case({1, 4, 1, 3, 200, 80, 80, true, 64, false, BHSD, DType::BF16});
    check_case({1, 2, 2, 4, 130, 17, 23, false, 0, false, BSHD, DType::F16});
    check_case({1, 2, 1, 2, 7, 128, 128, true, 0, false, BHSD, DType::F32});
  }
  unsetenv("HFPORT_ATTENTION_KERNELS");
}

TEST(Attention, GroupedAndMultiQueryHeads) {
  check_case({2, 8, 2, 45, 45, 64, 64, true, 0, false, BHSD, DType::F32});
  check_case({1, 6, 1, 70, 70, 40, 40, false, 0, false, BSHD, DType::F32});
}

TEST(Attention, MasksWindowsAndPadding) {
  check_case({2, 4, 2, 140, 140, 64, 64, true, 17, false, BHSD, DType::F32});
  check_case({2, 4, 2, 140, 140, 64, 64, true, 0, true, BSHD, DType::F32});
  check_case({2, 2, 1, 90, 90, 32, 32, false, 0, true, BHSD, DType::F32});
  check_case({1, 2, 2, 200, 200, 16, 16, true, 130, true, BHSD, DType::F32});
}

TEST(Attention, DecodeAgainstACache) {
  check_case({2, 8, 2, 1, 301, 64, 64, true, 0, false, BHSD, DType::F32});
  check_case({1, 4, 4, 7, 150, 64, 64, true, 32, true, BSHD, DType::F32});
  check_case({1, 2, 2, 90, 40, 24, 24, true, 0, false, BHSD, DType::F32});  // Sq > Sk
}

TEST(Attention, HalfPrecisionInputs) {
  check_case({2, 4, 2, 70, 70, 80, 80, true, 0, false, BHSD, DType::BF16});
  check_case({1, 4, 1, 33, 100, 64, 64, true, 0, true, BSHD, DType::F16});
}

TEST(Attention, BooleanAndAdditiveMasksBroadcast) {
  const Tensor q = random_tensor(DType::F32, {2, 3, 21, 32});
  const Tensor k = random_tensor(DType::F32, {2, 3, 75, 32});
  const Tensor v = random_tensor(DType::F32, {2, 3, 75, 32});
  AttentionOptions options;
  options.attn_mask = Tensor::empty(DType::BOOL, {21, 75});
  std::bernoulli_distribution coin(0.7);
  for (int64_t i = 0; i < 21 * 75; ++i) options.attn_mask.data_as<uint8_t>()[i] = coin(rng());
  EXPECT_LT(rel_l2(hfport::attention(q, k, v, options).out,
                   hfport::attention_reference(q, k, v, options).out), 1e-5);
  options.attn_mask = random_tensor(DType::F32, {2, 1, 21, 75});
  EXPECT_LT(rel_l2(hfport::attention(q, k, v, options).out,
                   hfport::attention_reference(q, k, v, options).out), 1e-5);
}

TEST(Attention, FullyMaskedRowsAreZero) {
  const Tensor q = random_tensor(DType::F32, {1, 2, 5, 16});
  const Tensor k = random_tensor(DType::F32, {1, 2, 5, 16});
  const Tensor v = random_tensor(DType::F32, {1, 2, 5, 16});
  AttentionOptions options;
  options.key_padding_mask = Tensor::zeros(DType::BOOL, {1, 5});
  options.return_lse = true;
  const hfport::AttentionResult got = hfport::attention(q, k, v, options);
  for (int64_t i = 0; i < got.out.numel(); ++i) EXPECT_EQ(got.out.data_as<float>()[i], 0.0f);
  for (int64_t i = 0; i < got.lse.numel(); ++i) {
    EXPECT_EQ(got.lse.data_as<float>()[i], -std::numeric_limits<float>::infinity());
  }
}

TEST(Attention, KernelWritesEveryOutputElement) {
  // attention_cpu on a NaN-poisoned output: every element must be overwritten.
  const int64_t B = 2, H = 4, S = 77, D = 40;
  const Tensor q = random_tensor(DType::F32, {B, H, S, D});
  const Tensor k = random_tensor(DType::F32, {B, 2, S, D});
  const Tensor v = random_tensor(DType::F32, {B, 2, S, D});
  Tensor out = Tensor::empty(DType::F32, {B, H, S, D});
  Tensor lse = Tensor::empty(DType::F32, {B, H, S});
  for (int64_t i = 0; i < out.numel(); ++i) out.data_as<float>()[i] = std::nanf("");
  for (int64_t i = 0; i < lse.numel(); ++i) lse.data_as<float>()[i] = std::nanf("");
  hfport::AttentionParams p;
  p.batch = B, p.q_heads = H, p.kv_heads = 2, p.q_len = S, p.kv_len = S, p.head_dim = D,
  p.v_dim = D;
  p.q = q.data(), p.k = k.data(), p.v = v.data(), p.out = out.data();
  p.lse = lse.data_as<float>();
  for (int i = 0; i < 3; ++i) {
    p.q_stride[i] = q.strides()[i];
    p.k_stride[i] = k.strides()[i];
    p.v_stride[i] = v.strides()[i];
    p.out_stride[i] = out.strides()[i];
  }
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.causal = true;
  hfport::attention_cpu(p);
  AttentionOptions options;
  options.causal = true;
  options.return_lse = true;
  const hfport::AttentionResult want = hfport::attention_reference(q, k, v, options);
  EXPECT_LT(rel_l2(out, want.out), 1e-5);
  EXPECT_LT(rel_l2(lse, want.lse), 1e-6);
}

TEST(Attention, ErrorsNameTheArgument) {
  using hfport_test::throws_exactly;
  const Tensor q = random_tensor(DType::F32, {1, 8, 4, 16});
  const Tensor k3 = random_tensor(DType::F32, {1, 3, 4, 16});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::attention(q, k3, k3); },
                                            {"k has 3 heads, which does not divide q's 8 heads"}));
  const Tensor k = random_tensor(DType::F32, {1, 2, 4, 16});
  const Tensor v_bf16 = random_tensor(DType::BF16, {1, 2, 4, 16});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::attention(q, k, v_bf16); },
                                            {"share one dtype", "v BF16"}));
  AttentionOptions options;
  options.key_padding_mask = Tensor::zeros(DType::F32, {1, 4});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::attention(q, k, k, options); },
                                            {"key_padding_mask must be BOOL", "got F32"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::attention_layout_from_name("sbhd"); }, {"'sbhd'"}));
}

}  // namespace
