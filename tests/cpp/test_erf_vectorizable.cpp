// erf_vectorizable (kernels/cpu/float_math.h) against the C library's double erf: within 4 ulp of
// the float result over a dense grid and at the edges (zeros, the |x| = 1 seam, the clamp at 4,
// infinities, NaN); and the exact-GELU kernel (its F32 path runs the SIMD clone this CPU picks)
// against torch's formula evaluated with that double erf, and in its negative tail against the
// exact GELU in relative terms (the kernel never forms 1 + erf there, so it keeps them).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/activation_params.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/float_math.h"

namespace {

// |got - want| in units of the float spacing at want.
double ulps(float got, double want) {
  const float rounded = static_cast<float>(want);
  const double spacing =
      std::nextafter(std::fabs(rounded), std::numeric_limits<float>::infinity()) -
      std::fabs(rounded);
  return std::fabs(static_cast<double>(got) - want) / spacing;
}

std::vector<float> grid() {
  std::vector<float> xs;
  for (int i = -600000; i <= 600000; ++i) xs.push_back(static_cast<float>(i) * 1e-5f);  // [-6, 6]
  for (float x = 1e-30f; x < 8.0f; x *= 1.001f) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  for (float x : {1.0f, 4.0f}) {  // the seam and the clamp, and their neighbours
    for (float y = x, z = x; y > x - 1e-5f; y = std::nextafter(y, 0.0f), z = std::nextafter(z, 9.0f)) {
      xs.push_back(y);
      xs.push_back(z);
      xs.push_back(-y);
    }
  }
  return xs;
}

TEST(ErfVectorizable, WithinFourUlpOfTheDoubleErf) {
  double worst = 0.0;
  float worst_x = 0.0f;
  for (float x : grid()) {
    const double error = ulps(hfport::erf_vectorizable(x), std::erf(static_cast<double>(x)));
    if (error > worst) {
      worst = error;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, 4.0) << "at x = " << worst_x;
}

TEST(ErfVectorizable, EdgeValues) {
  EXPECT_EQ(std::bit_cast<uint32_t>(hfport::erf_vectorizable(0.0f)), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(hfport::erf_vectorizable(-0.0f)), 0x80000000u);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(hfport::erf_vectorizable(inf), 1.0f);
  EXPECT_EQ(hfport::erf_vectorizable(-inf), -1.0f);
  EXPECT_EQ(hfport::erf_vectorizable(1e30f), 1.0f);
  EXPECT_EQ(hfport::erf_vectorizable(-4.5f), -1.0f);
  EXPECT_TRUE(std::isnan(hfport::erf_vectorizable(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_FLOAT_EQ(hfport::erf_vectorizable(1e-20f), static_cast<float>(1.1283791670955126 * 1e-20));
}

// The CPU GELU (erf) kernel over xs, its output poisoned with NaN before it runs.
std::vector<float> gelu_erf_kernel(const std::vector<float>& xs) {
  std::vector<float> out(xs.size(), std::numeric_limits<float>::quiet_NaN());
  hfport::ActivationParams p;
  p.activation = hfport::Activation::GeluErf;
  p.n = static_cast<int64_t>(xs.size());
  p.dtype = hfport::DType::F32;
  p.x = xs.data();
  p.out = out.data();
  hfport::activation_cpu(p);
  return out;
}

TEST(ErfVectorizable, GeluKernelMatchesTorchsFormulaWithAnExactErf) {
  const std::vector<float> xs = grid();
  const std::vector<float> out = gelu_erf_kernel(xs);
  for (size_t i = 0; i < xs.size(); ++i) {
    const float x = xs[i];
    const float erf = static_cast<float>(std::erf(static_cast<double>(x * 0.70710678118654752f)));
    const float want = 0.5f * x * (1.0f + erf);
    // erf's few ulp (of a value up to 1) scaled by 0.5 |x|, and the formula's own rounding.
    const double bound = 0.5 * std::fabs(x) * 5.0 * 0x1p-24 + 2.0 * std::fabs(want) * 0x1p-24;
    ASSERT_LE(std::fabs(static_cast<double>(out[i]) - want), bound) << "x = " << x;
  }
}

TEST(ErfVectorizable, GeluKeepsItsNegativeTailToRelativeAccuracy) {
  // x in [-5.6, -1.42] (z = x / sqrt 2 <= -1, the piece computed as erfc(|z|)): 1 + erf(z) falls
  // from 0.16 to 2e-8, where a float 1 + erf keeps no digits. The bound is set by exp(-z^2) of a
  // rounded z and a rounded z^2 (together up to about 1.5 z^2 2^-24 relative), plus erfc's
  // polynomial and a few roundings: (3 z^2 + 10) 2^-24, 3.4e-6 relative at x = -5.6.
  std::vector<float> xs;
  for (float x = -5.6f; x < -1.42f; x += 1e-4f) xs.push_back(x);
  const std::vector<float> out = gelu_erf_kernel(xs);
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double want = 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    const double z2 = x * x / 2.0;
    const double error = std::fabs(out[i] - want) / std::fabs(want) / ((3.0 * z2 + 10.0) * 0x1p-24);
    if (error > worst) {
      worst = error;
      worst_x = xs[i];
    }
  }
  EXPECT_LE(worst, 1.0) << "at x = " << worst_x;
}

}  // namespace
