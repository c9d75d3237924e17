// causal_conv1d and its one-step update against the float64 reference: odd channel counts and
// widths, f32, f16 and bf16, strided input, poisoned outputs, and steps from a zero state equal to the
// full convolution.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/causal_conv1d.h"

namespace {

using hfport::ConvActivation;
using hfport::DType;
using hfport::Tensor;
using namespace hfport_test;

TEST(CausalConv1d, MatchesTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (ConvActivation act : {ConvActivation::None, ConvActivation::Silu}) {
      for (auto [batch, dim, seqlen, width] :
           {std::array<int64_t, 4>{1, 3, 1, 2}, {2, 17, 29, 4}, {3, 8, 100, 3}, {1, 5, 6, 1}}) {
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " dim " + std::to_string(dim) +
                     " L " + std::to_string(seqlen) + " width " + std::to_string(width));
        const Tensor x = random_tensor(dtype, {batch, dim, seqlen});
        const Tensor weight = random_tensor(DType::F32, {dim, width});
        const Tensor bias = random_tensor(DType::F32, {dim});
        const Tensor out = poisoned(dtype, {batch, dim, seqlen});
        hfport::causal_conv1d(x, weight, bias, act, out);
        const Tensor ref = hfport::causal_conv1d_reference(x, weight, bias, act);
        EXPECT_LT(rel_l2(out, ref), dtype == DType::F32 ? kF32Tolerance : kBF16Tolerance);
      }
    }
  }
}

TEST(CausalConv1d, StridedInputWithoutBias) {
  const Tensor x = swap_dims(random_tensor(DType::F32, {2, 40, 13}), 1, 2);  // [2, 13, 40]
  const Tensor weight = swap_dims(random_tensor(DType::F32, {4, 13}), 0, 1);  // [13, 4] view
  const Tensor out = hfport::causal_conv1d(x, weight, Tensor(), ConvActivation::Silu);
  EXPECT_LT(rel_l2(out, hfport::causal_conv1d_reference(x, weight, Tensor(), ConvActivation::Silu)),
            kF32Tolerance);
}

TEST(CausalConv1dUpdate, StepsFromAZeroStateEqualTheFullConvolution) {
  const int64_t batch = 2, dim = 9, seqlen = 15, width = 4;
  for (int64_t state_len : {width, width - 1, width + 2}) {
    SCOPED_TRACE("state length " + std::to_string(state_len));
    const Tensor x = random_tensor(DType::F32, {batch, dim, seqlen});
    const Tensor weight = random_tensor(DType::F32, {dim, width});
    const Tensor bias = random_tensor(DType::F32, {dim});
    const Tensor ref = hfport::causal_conv1d_reference(x, weight, bias, ConvActivation::Silu);
    Tensor state = Tensor::zeros(DType::F32, {batch, dim, state_len});
    Tensor steps = poisoned(DType::F32, {batch, dim, seqlen});
    for (int64_t t = 0; t < seqlen; ++t) {
      const Tensor y = hfport::causal_conv1d_update(x.select(2, t), state, weight, bias,
                                                    ConvActivation::Silu);
      for (int64_t i = 0; i < batch * dim; ++i) {
        steps.data_as<float>()[i * seqlen + t] = y.data_as<float>()[i];
      }
    }
    EXPECT_LT(rel_l2(steps, ref), kF32Tolerance);
    // The state holds the last state_len inputs, oldest first.
    for (int64_t i = 0; i < batch * dim; ++i) {
      for (int64_t j = 0; j < state_len; ++j) {
        EXPECT_EQ(state.data_as<float>()[i * state_len + j],
                  x.data_as<float>()[i * seqlen + seqlen - state_len + j]);
      }
    }
    // The same sequence in one call of several steps.
    Tensor state2 = Tensor::zeros(DType::F32, {batch, dim, state_len});
    const Tensor all = hfport::causal_conv1d_update(x, state2, weight, bias, ConvActivation::Silu);
    EXPECT_LT(rel_l2(all, ref), kF32Tolerance);
  }
}

TEST(CausalConv1d, ErrorsNameTheArgumentAndTheExpectation) {
  const Tensor x = random_tensor(DType::F32, {1, 6, 5});
  const Tensor weight = random_tensor(DType::F32, {6, 4});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::causal_conv1d(x, weight.slice(0, 0, 5)); },
      {"causal_conv1d: weight must be [dim, width] = [6, 4], got [5, 4]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::causal_conv1d(x, weight, random_tensor(DType::F32, {7})); },
      {"causal_conv1d: bias must be [dim] = [6], got [7]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        Tensor state = Tensor::zeros(DType::F32, {1, 6, 2});
        hfport::causal_conv1d_update(x.select(2, 0), state, weight);
      },
      {"causal_conv1d_update: conv_state must keep S >= width - 1 = 3 columns, got [1, 6, 2]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::conv_activation_from_name("causal_conv1d", "relu"); },
      {"activation must be None, \"silu\" or \"swish\", got \"relu\""}));
}

}  // namespace
