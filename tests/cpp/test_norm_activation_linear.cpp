// rms_norm, layer_norm, the activations and linear against their float64 references, on random
// inputs at odd sizes, f32, f16 and bf16, with poisoned outputs.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/activation.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace {

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using namespace hfport_test;


const std::array<Shape, 3> kRowShapes = {Shape{1, 7}, Shape{3, 5, 64}, Shape{33, 1001}};

TEST(RmsNorm, MatchesTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (bool unit_offset : {false, true}) {
      for (const Shape& shape : kRowShapes) {
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + hfport::shape_to_string(shape) +
                     (unit_offset ? " (1 + w)" : " w"));
        const Tensor x = random_tensor(dtype, shape, 2.0, 0.3);
        const Tensor weight = random_tensor(dtype, {shape.back()}, 0.5, 1.0);
        hfport::RmsNormOptions o;
        o.add_unit_offset = unit_offset;
        o.out = poisoned(dtype, shape);
        hfport::rms_norm(x, weight, 1e-5, o);
        const auto ref = hfport::rms_norm_reference(x, weight, 1e-5, o);
        EXPECT_LT(rel_l2(o.out, ref.out), tolerance(dtype));
      }
    }
  }
}

TEST(RmsNorm, FusedResidualAdd) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    SCOPED_TRACE(std::string(hfport::dtype_name(dtype)));
    const Tensor x = random_tensor(dtype, {4, 130});
    hfport::RmsNormOptions o;
    o.residual = random_tensor(dtype, {4, 130});
    const Tensor weight = random_tensor(DType::F32, {130});
    const auto fast = hfport::rms_norm(x, weight, 1e-6, o);
    const auto ref = hfport::rms_norm_reference(x, weight, 1e-6, o);
    EXPECT_LT(rel_l2(fast.out, ref.out), tolerance(dtype));
    EXPECT_LT(rel_l2(fast.residual_sum, ref.residual_sum), 1e-12);
    // The sum itself: x + residual, rounded once.
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double want = hfport::load_as_f64(x.data(), dtype, i) +
                          hfport::load_as_f64(o.residual.data(), dtype, i);
      EXPECT_NEAR(hfport::load_as_f64(fast.residual_sum.data(), dtype, i), want,
                  std::fabs(want) * (dtype == DType::F32 ? 1e-7 : 1e-2));
    }
  }
}

TEST(LayerNorm, MatchesTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (bool affine : {true, false}) {
      for (const Shape& shape : kRowShapes) {
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + hfport::shape_to_string(shape));
        const Tensor x = random_tensor(dtype, shape, 3.0, 1.5);
        const Tensor w = affine ? random_tensor(DType::F32, {shape.back()}, 0.5, 1.0) : Tensor();
        const Tensor b = affine ? random_tensor(DType::F32, {shape.back()}) : Tensor();
        const Tensor out = poisoned(dtype, shape);
        hfport::layer_norm(x, w, b, 1e-5, out);
        EXPECT_LT(rel_l2(out, hfport::layer_norm_reference(x, w, b, 1e-5)), tolerance(dtype));
      }
    }
  }
}

// add_into_layer_norm: the residual step written over x (x * scale + residual, the product
// rounded first as the model's two ops), and layer_norm of that sum.
TEST(LayerNorm, FusedResidualAddMatchesTheAddThenTheReference) {
  for (bool scaled : {false, true}) {
    for (const Shape& shape : kRowShapes) {
      SCOPED_TRACE(hfport::shape_to_string(shape) + (scaled ? " with a layer scale" : ""));
      const int64_t hidden = shape.back();
      const Tensor x = random_tensor(DType::F32, shape, 1.0, 2.0);
      const Tensor residual = random_tensor(DType::F32, shape, 3.0, 1.5);
      const Tensor scale = scaled ? random_tensor(DType::F32, {hidden}, 0.5, 0.1) : Tensor();
      const Tensor w = random_tensor(DType::F32, {hidden}, 0.5, 1.0);
      const Tensor b = random_tensor(DType::F32, {hidden});
      Tensor sum = Tensor::empty(DType::F32, shape);
      for (int64_t i = 0; i < x.numel(); ++i) {
        const float xi = x.data_as<float>()[i];
        const float product = scaled ? xi * scale.data_as<float>()[i % hidden] : xi;
        sum.data_as<float>()[i] = product + residual.data_as<float>()[i];
      }
      const Tensor out = hfport::add_into_layer_norm(x, residual, scale, w, b, 1e-5);
      EXPECT_LT(rel_l2(x, sum), 1e-7);  // x now holds the sum
      EXPECT_LT(rel_l2(out, hfport::layer_norm_reference(sum, w, b, 1e-5)), kF32Tolerance);
    }
  }
  const Tensor half = random_tensor(DType::BF16, {4, 16});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::add_into_layer_norm(half, half, Tensor(), Tensor(), Tensor(), 1e-6); },
      {"add_into_layer_norm: x must be a contiguous F32 tensor (it is written in place), got "
       "BF16"}));
  const Tensor x = random_tensor(DType::F32, {4, 16});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::add_into_layer_norm(x, random_tensor(DType::F32, {4, 16}),
                                    random_tensor(DType::F32, {8}), Tensor(), Tensor(), 1e-6);
      },
      {"add_into_layer_norm: scale must be [hidden] = [16], got [8]"}));
}

TEST(Activations, MatchTheFloat64References) {
  using hfport::GeluApproximation;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (const Shape& shape : kRowShapes) {
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + hfport::shape_to_string(shape));
      const Tensor x = random_tensor(dtype, shape, 3.0);
      const Tensor up = random_tensor(dtype, shape);
      for (GeluApproximation mode : {GeluApproximation::None, GeluApproximation::Tanh}) {
        const Tensor out = poisoned(dtype, shape);
        hfport::gelu(x, mode, out);
        EXPECT_LT(rel_l2(out, hfport::gelu_reference(x, mode)), tolerance(dtype));
      }
      Tensor out = poisoned(dtype, shape);
      hfport::silu(x, out);
      EXPECT_LT(rel_l2(out, hfport::silu_reference(x)), tolerance(dtype));
      out = poisoned(dtype, shape);
      hfport::swiglu(x, up, out);
      EXPECT_LT(rel_l2(out, hfport::swiglu_reference(x, up)), tolerance(dtype));
    }
  }
}

TEST(Linear, MatchesTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (auto [rows, in, out_features] :
         {std::array<int64_t, 3>{1, 1, 1}, {5, 37, 23}, {64, 129, 65}}) {
      for (bool with_bias : {true, false}) {
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + std::to_string(rows) + "x" +
                     std::to_string(in) + " -> " + std::to_string(out_features));
        const Tensor x = random_tensor(dtype, {rows, in});
        const Tensor w = random_tensor(dtype, {out_features, in});
        const Tensor b = with_bias ? random_tensor(DType::F32, {out_features}) : Tensor();
        const Tensor out = poisoned(dtype, {rows, out_features});
        hfport::linear(x, w, b, out);
        EXPECT_LT(rel_l2(out, hfport::linear_reference(x, w, b)), tolerance(dtype));
      }
    }
  }
}

TEST(Linear, WeightLayoutsAndStridedInput) {
  const Tensor x = swap_dims(random_tensor(DType::F32, {3, 24, 10}), 1, 2);  // [3, 10, 24] view
  const Tensor bias = random_tensor(DType::F32, {17});
  // [out, in] viewed from an [in, out] matrix (GPT-2 Conv1D): read with sgemm's NoTrans.
  const Tensor transposed = swap_dims(random_tensor(DType::F32, {24, 17}), 0, 1);
  // [out, in] rows with padding: a row stride larger than in.
  const Tensor padded = random_tensor(DType::F32, {17, 30}).slice(1, 0, 24);
  // Neither: a column stride of 2, copied first.
  const Tensor every_other = random_tensor(DType::F32, {17, 48}).slice(1, 0, 48, 2);
  for (const Tensor& w : {transposed, padded, every_other}) {
    SCOPED_TRACE(hfport::shape_to_string(w.strides()));
    const Tensor out = poisoned(DType::F32, {3, 10, 17});
    hfport::linear(x, w, bias, out);
    EXPECT_LT(rel_l2(out, hfport::linear_reference(x, w, bias)), kF32Tolerance);
  }
}

TEST(Linear, ActivationsMatchTheFloat64Reference) {
  using hfport::LinearActivation;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (LinearActivation act : {LinearActivation::Gelu, LinearActivation::GeluTanh}) {
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) +
                   (act == LinearActivation::Gelu ? " gelu" : " gelu_tanh"));
      const Tensor x = random_tensor(dtype, {7, 45}, 2.0);
      const Tensor w = random_tensor(dtype, {19, 45});
      const Tensor b = random_tensor(dtype, {19});
      const Tensor out = poisoned(dtype, {7, 19});
      hfport::LinearOptions options;
      options.activation = act;
      hfport::linear(x, w, b, out, options);
      EXPECT_LT(rel_l2(out, hfport::linear_reference(x, w, b, act)), tolerance(dtype));
    }
  }
  // The two GELUs differ by about 1e-5 (relative L2) on such inputs: each option must land much
  // closer to its own GELU than to the other.
  const Tensor x = random_tensor(DType::F32, {7, 45}, 2.0);
  const Tensor w = random_tensor(DType::F32, {19, 45});
  for (LinearActivation act : {LinearActivation::Gelu, LinearActivation::GeluTanh}) {
    const LinearActivation other =
        act == LinearActivation::Gelu ? LinearActivation::GeluTanh : LinearActivation::Gelu;
    hfport::LinearOptions options;
    options.activation = act;
    const Tensor y = hfport::linear(x, w, Tensor(), Tensor(), options);
    EXPECT_GT(rel_l2(y, hfport::linear_reference(x, w, Tensor(), other)),
              10 * rel_l2(y, hfport::linear_reference(x, w, Tensor(), act)));
  }
}

TEST(NormActivationLinear, ErrorsNameTheArgumentAndTheExpectation) {
  const Tensor x = random_tensor(DType::F32, {4, 16});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rms_norm(x, random_tensor(DType::F32, {15}), 1e-6); },
      {"rms_norm: weight must be [hidden] = [16], got [15]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::layer_norm(x, Tensor(), random_tensor(DType::F32, {4}), 1e-6); },
      {"layer_norm: bias must be [hidden] = [16], got [4]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::linear(x, random_tensor(DType::F32, {8, 15})); },
      {"linear: weight must be [out, in] = [8, 16], got [8, 15]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::linear(x, random_tensor(DType::BF16, {8, 16})); },
      {"linear: weight must have the dtype of x (F32), got BF16"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::linear_activation_from_name("relu"); },
      {"linear: activation must be \"none\", \"gelu\" (erf) or \"gelu_tanh\", got \"relu\""}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::swiglu(x, random_tensor(DType::F32, {4, 8})); },
      {"swiglu: up must be gate's shape = [4, 16], got [4, 8]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::silu(x, poisoned(DType::F32, {4, 15})); },
      {"silu: out must be the result's shape = [4, 16], got [4, 15]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::gelu_approximation_from_name("erf"); },
                                            {"gelu: approximate must be \"none\" or \"tanh\""}));
}

}  // namespace
