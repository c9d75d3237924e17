// Scalar float32 functions the CPU kernels share, written to match torch where torch defines them
// (softplus's threshold, silu, both gelus), and exp, log and erf written so that loops calling them
// vectorise.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

// Marks a hot loop function to be compiled three times, for AVX-512 (x86-64-v4), AVX2+FMA
// (x86-64-v3) and the baseline, with the loader picking the best one the CPU has (GCC/clang
// function multiversioning through an ifunc). The library itself stays built for the baseline.
// Only plain (non-template) functions may carry it. Needs the x86-64-v* names in target_clones
// (GCC 12, clang 16) and ifunc (glibc); elsewhere the baseline build is all there is.
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    ((defined(__clang__) && __clang_major__ >= 16) || (!defined(__clang__) && __GNUC__ >= 12))
#define HFPORT_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HFPORT_SIMD_CLONES
#endif

namespace hfport {

// torch.nn.functional.softplus with beta 1 and threshold 20: above it, the identity.
// (The scan uses softplus_vectorizable below; this scalar form serves the one-step update.)
inline float softplus_f32(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

inline float silu_f32(float x) { return x / (1.0f + std::exp(-x)); }

// torch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
inline float gelu_tanh_f32(float x) {
  const float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + std::tanh(inner));
}

// exp(x - k ln 2) for the nearest integer k to x / ln 2 (|x - k ln 2| <= ln 2 / 2): ln 2 split in
// two parts (Cody-Waite) so the reduction is exact enough, then Cephes' polynomial for exp(r).
inline float exp_of_reduced(float x, float k) {
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

// exp(x) within about 2 ulp for x in [-87, 88] (clamped outside: exp(-87) ~ 1.6e-38 stands in for
// the underflow, which is below anything a recurrence state can resolve). std::exp does not
// vectorise without -ffast-math (errno); this does: range reduction x = k ln2 + r with the
// round-to-nearest done by the 1.5 * 2^23 trick, two-part ln2 (Cody-Waite), Cephes' degree-6
// polynomial for exp(r) on [-ln2/2, ln2/2], and 2^k assembled in the exponent bits. NaN in, NaN out.
// The clamp and the NaN pass-through are integer operations on the bits: a float comparison may
// trap (-ftrapping-math is on by default), which stops GCC from turning it into a vector select.
inline float exp_vectorizable(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  // |x| limit: 87 (0x42ae0000) below zero, 88 (0x42b00000) above.
  const uint32_t limit = 0x42b00000u - (sign >> 31) * 0x20000u;
  const float xc = std::bit_cast<float>(sign | std::min(magnitude, limit));
  const float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float er = exp_of_reduced(xc, k);
  const int32_t scale_bits = (static_cast<int32_t>(k) + 127) << 23;
  const uint32_t result = std::bit_cast<uint32_t>(er * std::bit_cast<float>(scale_bits));
  const uint32_t nan_mask = 0u - static_cast<uint32_t>(magnitude > 0x7f800000u);
  return std::bit_cast<float>((bits & nan_mask) | (result & ~nan_mask));
}

// log(y) within about 2 ulp for positive normal y (the softplus below only passes y >= 1).
// y = m 2^k with m in [sqrt(1/2), sqrt(2)), then Cephes' logf polynomial in m - 1 and k ln2 added
// in two parts. Selects are integer operations for the same reason as above.
inline float log_vectorizable(float y) {
  const int32_t bits = std::bit_cast<int32_t>(y);
  int32_t k = (bits >> 23) - 127;
  int32_t m_bits = (bits & 0x007fffff) | 0x3f800000;
  const int32_t above_sqrt2 = static_cast<int32_t>(m_bits > 0x3fb504f3);  // m > sqrt(2)
  m_bits -= above_sqrt2 << 23;                                          // m /= 2
  k += above_sqrt2;
  const float x = std::bit_cast<float>(m_bits) - 1.0f;
  const float z = x * x;
  float p = 7.0376836292e-2f;
  p = p * x - 1.1514610310e-1f;
  p = p * x + 1.1676998740e-1f;
  p = p * x - 1.2420140846e-1f;
  p = p * x + 1.4249322787e-1f;
  p = p * x - 1.6668057665e-1f;
  p = p * x + 2.0000714765e-1f;
  p = p * x - 2.4999993993e-1f;
  p = p * x + 3.3333331174e-1f;
  const float kf = static_cast<float>(k);
  float r = x * z * p + kf * -2.12194440e-4f;
  r += -0.5f * z;
  return (x + r) + kf * 0.693359375f;
}

// softplus_f32 in vectorisable form. log1p(e) for e = exp(x) is log(1 + e) * e / ((1 + e) - 1),
// which cancels the rounding of 1 + e (Goldberg's trick); when 1 + e rounds to 1, log1p(e) = e.
inline float softplus_vectorizable(float x) {
  const float e = exp_vectorizable(x);
  const float w = 1.0f + e;
  const float wm1 = w - 1.0f;
  const int32_t w_is_one = 0 - static_cast<int32_t>(std::bit_cast<int32_t>(w) == 0x3f800000);
  // When w == 1 the quotient would be 0/0: divide by 1 instead, and the mask picks e below.
  const int32_t denominator =
      (0x3f800000 & w_is_one) | (std::bit_cast<int32_t>(wm1) & ~w_is_one);
  const float ratio = e / std::bit_cast<float>(denominator);
  const float log1p_e = log_vectorizable(w) * ratio;
  const int32_t small = std::bit_cast<int32_t>(log1p_e);
  const int32_t picked = (std::bit_cast<int32_t>(e) & w_is_one) | (small & ~w_is_one);
  // x > 20 as integers: for a float above zero the bit order is the value order, and every
  // negative float is a negative int32. A NaN x has bits above 20's, so NaN passes through.
  const int32_t identity = 0 - static_cast<int32_t>(std::bit_cast<int32_t>(x) > 0x41a00000);
  return std::bit_cast<float>((std::bit_cast<int32_t>(x) & identity) | (picked & ~identity));
}

// silu in vectorisable form: x / (1 + exp(-x)); for x < -87 the clamped exp still makes it ~0.
inline float silu_vectorizable(float x) { return x / (1.0f + exp_vectorizable(-x)); }

// erf's two fits (see erf_vectorizable below), shared with gelu_erf_vectorizable:
// erf(x) = x P(x^2) for |x| < 1, and erfc(x) = exp(-x^2) R(t), t = 1 / (1 + x / 2), for x >= 1.
inline float erf_small_polynomial(float s) {
  float p = 7.847262168070301e-05f;
  p = p * s - 8.008193108253181e-04f;
  p = p * s + 5.1880995742976665e-03f;
  p = p * s - 2.6853691786527634e-02f;
  p = p * s + 1.128358244895935e-01f;
  p = p * s - 3.761262595653534e-01f;
  p = p * s + 1.1283791065216064f;
  return p;
}

inline float erfc_scaled_polynomial(float t) {
  float r = 1.1928059905767441e-01f;
  r = r * t - 4.7104978561401367e-01f;
  r = r * t + 5.631668567657471e-01f;
  r = r * t - 1.0361770540475845e-01f;
  r = r * t + 3.4784358739852905e-01f;
  r = r * t + 2.596667408943176e-01f;
  r = r * t + 2.849169969558716e-01f;
  r = r * t - 1.545434060972184e-04f;
  return r;
}

// erf(x) within about 3 ulp, in a form that vectorises (std::erf is a libm call, which does not;
// GELU's erf dominated a ViT's MLP time). Two pieces, joined by integer selects as above:
//   |x| < 1:  x * P(x^2), P of degree 6 fitted to erf(x) / x on [0, 1] (relative error 1.2e-9);
//   |x| >= 1: 1 - exp(-x^2) R(t), t = 1 / (1 + |x| / 2), R of degree 7 fitted to
//             erfc(x) exp(x^2) on [1, 4] (relative error 4e-10), the sign of x put back.
// Both fits are weighted least squares against 30-digit erf on Chebyshev nodes (issue 15). Past
// |x| = 4, erf is within 1.6e-8 of 1 and rounds to +-1 in F32, so |x| is clamped there. NaN in,
// NaN out.
inline float erf_vectorizable(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t magnitude = bits & 0x7fffffffu;
  const float s = x * x;
  const float p = erf_small_polynomial(s);
  const float small = x * p;
  const float a = std::bit_cast<float>(std::min(magnitude, 0x40800000u));  // min(|x|, 4)
  const float t = 1.0f / (1.0f + 0.5f * a);
  const float r = erfc_scaled_polynomial(t);
  const float large = 1.0f - exp_vectorizable(-(a * a)) * r;
  const uint32_t signed_large = std::bit_cast<uint32_t>(large) | (bits & 0x80000000u);
  const uint32_t is_small = 0u - static_cast<uint32_t>(magnitude < 0x3f800000u);  // |x| < 1
  const uint32_t is_nan = 0u - static_cast<uint32_t>(magnitude > 0x7f800000u);
  const uint32_t picked = (std::bit_cast<uint32_t>(small) & is_small) | (signed_large & ~is_small);
  return std::bit_cast<float>((bits & is_nan) | (picked & ~is_nan));
}

// exp(w) for w in [-16, 0] (GELU's exp(-z^2) with |z| <= 4): exp_vectorizable without the clamp
// and the NaN path, which that range never needs (about 2 ulp). The round-to-nearest constant
// 1.5 * 2^23 is offset by the exponent bias, so the sum's low mantissa bits already hold k + 127:
// shifted left by 23 they are 2^k's bits (the constant's own bits shift out).
inline float exp_of_nonpositive(float w) {
  const float biased = w * 1.44269504088896341f + 12583039.0f;  // 1.5 * 2^23 + 127 + k
  const float k = biased - 12583039.0f;
  const float er = exp_of_reduced(w, k);
  return er * std::bit_cast<float>(std::bit_cast<uint32_t>(biased) << 23);
}

// torch's gelu(approximate="none"), 0.5 x (1 + erf(z)) with z = x / sqrt 2, in a form that
// vectorises and costs about 45 vector operations an element (the erf_vectorizable form above cost
// about 70, and ran at 0.4x torch's speed in a ViT's MLP: issue 15). 1 + erf(z) is computed as one
// quantity, never as 1 plus a rounded erf:
//   |z| < 1:  1 + z P(z^2), P as in erf_vectorizable;
//   |z| >= 1: e = erfc(|z|) = exp(-z^2) R(t) with erf_vectorizable's R, then e for z < 0 (no
//             cancellation: the far negative tail keeps its relative accuracy, where torch's
//             1 + erf rounds to 0) and 2 - e for z > 0. Past |z| = 4, e (< 1.6e-8) is taken as 0,
//             as erf_vectorizable's clamp did: 0.5 x (1 + erf) is then x for z > 4 and -0 for z < -4,
//             which is torch's float result too. gelu(-inf) is NaN and gelu(inf) inf, as torch's.
// exp_of_nonpositive only ever sees -min(|z|, 4)^2. NaN in, NaN out (through x). The selects are
// integer operations for the reason given at exp_vectorizable.
inline float gelu_erf_vectorizable(float x) {
  const float z = x * 0.70710678118654752f;
  const uint32_t z_bits = std::bit_cast<uint32_t>(z);
  const uint32_t magnitude = z_bits & 0x7fffffffu;
  const float s = z * z;
  const float p = erf_small_polynomial(s);
  const float near_zero = z * p + 1.0f;
  const float a = std::bit_cast<float>(std::min(magnitude, 0x40800000u));  // min(|z|, 4)
  const float t = 1.0f / (1.0f + 0.5f * a);
  const float r = erfc_scaled_polynomial(t);
  const float tail = exp_of_nonpositive(-(a * a)) * r;
  const uint32_t in_range = 0u - static_cast<uint32_t>(magnitude < 0x40800000u);  // |z| < 4
  const uint32_t tail_bits = std::bit_cast<uint32_t>(tail) & in_range;
  const uint32_t negative = 0u - (z_bits >> 31);
  const uint32_t far = (tail_bits & negative) |
                       (std::bit_cast<uint32_t>(2.0f - std::bit_cast<float>(tail_bits)) & ~negative);
  const uint32_t is_small = 0u - static_cast<uint32_t>(magnitude < 0x3f800000u);  // |z| < 1
  const uint32_t one_plus_erf =
      (std::bit_cast<uint32_t>(near_zero) & is_small) | (far & ~is_small);
  return 0.5f * x * std::bit_cast<float>(one_plus_erf);
}

}  // namespace hfport
