// Reference arithmetic for the dtype, cast and CUDA tests, written from the format definitions and
// sharing nothing with core/dtype.cpp: decoders build each value from its sign, exponent and
// mantissa fields with ldexp, and rounding scales by a power of two and lets nearbyint (round to
// nearest, ties to even, the default mode) pick the integer.
#pragma once

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

namespace hfport_test {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A binary float format: `mantissa_bits` stored bits, an exponent field of `exponent_bits`.
// IEEE-style formats reserve the top exponent for inf/NaN; E4M3FN has no infinities and only the
// all-ones pattern is NaN.
inline double decode_fields(uint32_t bits, int exponent_bits, int mantissa_bits, bool ieee_top) {
  const int bias = (1 << (exponent_bits - 1)) - 1;
  const uint32_t sign = (bits >> (exponent_bits + mantissa_bits)) & 1u;
  const uint32_t exponent = (bits >> mantissa_bits) & ((1u << exponent_bits) - 1);
  const uint32_t mantissa = bits & ((1u << mantissa_bits) - 1);
  const uint32_t top = (1u << exponent_bits) - 1;
  double magnitude;
  if (ieee_top && exponent == top) {
    magnitude = mantissa == 0 ? kInf : kNaN;
  } else if (!ieee_top && exponent == top && mantissa == (1u << mantissa_bits) - 1) {
    magnitude = kNaN;
  } else if (exponent == 0) {  // subnormal: 0.m * 2^(1 - bias)
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - bias - mantissa_bits);
  } else {  // normal: 1.m * 2^(e - bias)
    magnitude = std::ldexp(static_cast<double>((1u << mantissa_bits) | mantissa),
                           static_cast<int>(exponent) - bias - mantissa_bits);
  }
  return sign ? -magnitude : magnitude;
}

inline double ref_f16(uint16_t bits) { return decode_fields(bits, 5, 10, true); }
inline double ref_bf16(uint16_t bits) { return decode_fields(bits, 8, 7, true); }
inline double ref_f32(uint32_t bits) { return decode_fields(bits, 8, 23, true); }
inline double ref_e4m3(uint8_t bits) { return decode_fields(bits, 4, 3, false); }
inline double ref_e5m2(uint8_t bits) { return decode_fields(bits, 5, 2, true); }

inline constexpr double kF16Max = 65504.0;
inline constexpr double kBF16Max = 0x1.fep127;  // (2 - 2^-7) * 2^127

// x rounded to nearest (ties to even) in a format with `precision` significand bits (the hidden
// one included), smallest normal 2^min_exp and largest finite `max_finite`; past it, +-inf.
inline double ref_round(double x, int precision, int min_exp, double max_finite) {
  if (std::isnan(x) || std::isinf(x) || x == 0.0) return x;
  const int exponent = std::max(std::ilogb(x), min_exp);
  const int quantum = exponent - (precision - 1);  // the value of the last kept bit: 2^quantum
  const double rounded = std::ldexp(std::nearbyint(std::ldexp(x, -quantum)), quantum);
  if (std::fabs(rounded) > max_finite) return std::copysign(kInf, x);
  return rounded;
}
inline double ref_round_f16(double x) { return ref_round(x, 11, -14, kF16Max); }
inline double ref_round_bf16(double x) { return ref_round(x, 8, -126, kBF16Max); }
inline double ref_round_f32(double x) { return ref_round(x, 24, -126, FLT_MAX); }

// An integer (sign and 64-bit magnitude) rounded to `precision` significant bits, ties to even,
// in integer arithmetic (a double cannot hold every 64-bit integer).
inline double ref_round_integer(bool negative, uint64_t magnitude, int precision) {
  double out;
  const int width = std::bit_width(magnitude);
  if (width <= precision) {
    out = static_cast<double>(magnitude);  // exact: precision <= 53
  } else {
    const int drop = width - precision;
    uint64_t kept = magnitude >> drop;
    const uint64_t rest = magnitude & ((uint64_t{1} << drop) - 1);
    const uint64_t half = uint64_t{1} << (drop - 1);
    if (rest > half || (rest == half && (kept & 1u))) ++kept;
    out = std::ldexp(static_cast<double>(kept), drop);
  }
  return negative ? -out : out;
}

// Same value (NaN matching any NaN), and the same sign for zeros and infinities.
inline bool same_value(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

}  // namespace hfport_test
