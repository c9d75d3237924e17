// hfport's own FFTs against a long-double direct DFT on fresh random inputs: the real plans
// (RealFftPlan float, RealFftPlanF64 double) at the front ends' sizes (400 Whisper, 512 fbank, 1024
// CLAP, 2048) and at small ones whose half has a prime factor other than 2, 3, 5 (14 = 2 7,
// 22 = 2 11: the generic butterfly); the complex plan alone at odd and mixed sizes; a plan reused
// on new inputs (its scratch carries nothing over); and the size errors.
//
// The bars are round-off levels: float64 relative L2 1e-15 (measured a few 1e-16), float32 1e-6
// (measured about 1e-7). A wrong twiddle or butterfly gives errors of order 1.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "kernels/cpu/fft_complex.h"
#include "kernels/cpu/fft_real.h"
#include "kernels/cpu/fft_real_f64.h"

namespace {

using hfport_test::kernel_rng;
using hfport_test::throws_exactly;
using LComplex = std::complex<long double>;

constexpr double kF64Bar = 1e-15;
constexpr double kF32Bar = 1e-6;

// X[k] = sum_t x[t] exp(-2 pi i k t / n), k < bins, in long double; the root table is indexed by
// (k t) mod n, so no angle grows with k t.
template <class In>
std::vector<LComplex> direct_dft(const std::vector<In>& x, int64_t bins) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<LComplex> roots(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    const long double angle = -2.0L * std::numbers::pi_v<long double> * j / n;
    roots[static_cast<size_t>(j)] = {std::cos(angle), std::sin(angle)};
  }
  std::vector<LComplex> out(static_cast<size_t>(bins));
  for (int64_t k = 0; k < bins; ++k) {
    LComplex sum = 0.0L;
    for (int64_t t = 0; t < n; ++t) {
      const LComplex v = static_cast<LComplex>(x[static_cast<size_t>(t)]);
      sum += v * roots[static_cast<size_t>((k * t) % n)];
    }
    out[static_cast<size_t>(k)] = sum;
  }
  return out;
}

template <class T>
double rel_l2(const std::vector<std::complex<T>>& got, const std::vector<LComplex>& want) {
  EXPECT_EQ(got.size(), want.size());
  long double diff = 0.0L, norm = 0.0L;
  for (size_t k = 0; k < want.size(); ++k) {
    const LComplex g(got[k].real(), got[k].imag());
    diff += std::norm(g - want[k]);
    norm += std::norm(want[k]);
  }
  return static_cast<double>(std::sqrt(diff / norm));
}

template <class T>
std::vector<T> random_real(int64_t n) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> x(static_cast<size_t>(n));
  for (T& v : x) v = static_cast<T>(normal(kernel_rng()));
  return x;
}

template <class T>
std::vector<std::complex<T>> random_complex(int64_t n) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<std::complex<T>> x(static_cast<size_t>(n));
  for (auto& v : x) {
    v = {static_cast<T>(normal(kernel_rng())), static_cast<T>(normal(kernel_rng()))};
  }
  return x;
}

const std::vector<int64_t> kRealSizes = {2, 4, 6, 10, 14, 22, 400, 512, 1000, 1024, 2048, 4096};

TEST(Fft, RealFloat64MatchesALongDoubleDft) {
  for (int64_t n : kRealSizes) {
    SCOPED_TRACE("size " + std::to_string(n));
    const std::vector<double> x = random_real<double>(n);
    hfport::RealFftPlanF64 plan(n);
    std::vector<std::complex<double>> got(static_cast<size_t>(plan.bins()));
    plan.forward(x.data(), got.data());
    EXPECT_LT(rel_l2(got, direct_dft(x, n / 2 + 1)), kF64Bar);
    EXPECT_EQ(got[0].imag(), 0.0);
    EXPECT_EQ(got[static_cast<size_t>(n / 2)].imag(), 0.0);
  }
}

TEST(Fft, RealFloat32MatchesALongDoubleDft) {
  for (int64_t n : kRealSizes) {
    SCOPED_TRACE("size " + std::to_string(n));
    const std::vector<float> x = random_real<float>(n);
    const hfport::RealFftPlan plan(n);
    std::vector<std::complex<float>> got(static_cast<size_t>(plan.bins()));
    plan.forward(x.data(), got.data());
    EXPECT_LT(rel_l2(got, direct_dft(x, n / 2 + 1)), kF32Bar);
  }
}

TEST(Fft, ComplexPlanMatchesALongDoubleDftAtOddAndMixedSizes) {
  // 1 (no stage), primes 7, 11, 13 (generic butterfly), 9 and 25 (radix 3 and 5 twice), 8 (4 then
  // 2), 539 = 7 7 11 (generic stages in a row), 1000 = 4 2 5 5 5, 4096 = 4^6.
  for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 11, 13, 25, 539, 1000, 4096}) {
    SCOPED_TRACE("size " + std::to_string(n));
    const auto x64 = random_complex<double>(n);
    hfport::ComplexFftPlan<double> plan64(n);
    std::vector<std::complex<double>> got64(static_cast<size_t>(n));
    plan64.forward(x64.data(), got64.data());
    EXPECT_LT(rel_l2(got64, direct_dft(x64, n)), kF64Bar);

    const auto x32 = random_complex<float>(n);
    hfport::ComplexFftPlan<float> plan32(n);
    std::vector<std::complex<float>> got32(static_cast<size_t>(n));
    plan32.forward(x32.data(), got32.data());
    EXPECT_LT(rel_l2(got32, direct_dft(x32, n)), kF32Bar);
  }
}

TEST(Fft, APlanReusedGivesTheSameBitsAsAFreshOne) {
  for (int64_t n : {int64_t{22}, int64_t{400}, int64_t{512}}) {
    SCOPED_TRACE("size " + std::to_string(n));
    const std::vector<double> a = random_real<double>(n), b = random_real<double>(n);
    hfport::RealFftPlanF64 reused(n);
    std::vector<std::complex<double>> first(static_cast<size_t>(n / 2 + 1)), again = first,
                                      fresh = first;
    reused.forward(b.data(), first.data());
    reused.forward(a.data(), again.data());
    hfport::RealFftPlanF64(n).forward(a.data(), fresh.data());
    EXPECT_EQ(again, fresh);
  }
}

TEST(Fft, SizeErrorsNameTheSize) {
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([] { hfport::RealFftPlan(7); }, {"even", "7"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([] { hfport::RealFftPlan(0); }, {"even", "0"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([] { hfport::RealFftPlanF64(401); },
                                                    {"even", "401"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([] { hfport::ComplexFftPlan<float>(0); },
                                                    {">= 1", "0"}));
}

}  // namespace
