// dtype.h: sizes and names against a table written here, and every conversion against the
// field-based references in float_reference.h: the widenings over all 65536 (or 256) bit
// patterns, the narrowings on hand-picked ties and on random floats checked against the nearest
// value in the table of all finite halves.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "float_reference.h"

namespace {

using hfport::DType;
using namespace hfport_test;

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
  bool floating;
};

// From the safetensors format description, not from dtype.cpp.
const DTypeRow kTable[] = {
    {DType::BOOL, "BOOL", 1, false},      {DType::U8, "U8", 1, false},
    {DType::I8, "I8", 1, false},          {DType::I16, "I16", 2, false},
    {DType::U16, "U16", 2, false},        {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true},       {DType::I32, "I32", 4, false},
    {DType::U32, "U32", 4, false},        {DType::F32, "F32", 4, true},
    {DType::I64, "I64", 8, false},        {DType::U64, "U64", 8, false},
    {DType::F64, "F64", 8, true},         {DType::F8_E4M3, "F8_E4M3", 1, true},
    {DType::F8_E5M2, "F8_E5M2", 1, true},
};

TEST(DType, SizesNamesAndKindsMatchTheSafetensorsTable) {
  ASSERT_EQ(std::size(kTable), static_cast<size_t>(hfport::kDTypeCount));
  for (const DTypeRow& row : kTable) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(hfport::dtype_size(row.dtype), row.size);
    EXPECT_EQ(hfport::dtype_name(row.dtype), row.name);
    EXPECT_EQ(hfport::dtype_is_floating(row.dtype), row.floating);
    const auto parsed = hfport::dtype_from_name(row.name);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, row.dtype);
  }
}

TEST(DType, UnknownNamesAreRefused) {
  for (const char* name : {"", "f32", "F4", "FLOAT32", "BF16 ", " F16", "F8_E4M3FN", "I128", "bool",
                           "F8", "C64"}) {
    EXPECT_FALSE(hfport::dtype_from_name(name).has_value()) << "'" << name << "'";
  }
  EXPECT_FALSE(hfport::dtype_from_name(std::string_view("F32\0", 4)).has_value());
}

uint32_t float_bits(float f) { return std::bit_cast<uint32_t>(f); }

// Widened value must equal the reference exactly (sign of zero included); a NaN must stay a NaN
// with its sign.
void expect_widened(double reference, float got, uint32_t pattern) {
  if (std::isnan(reference)) {
    EXPECT_TRUE(std::isnan(got)) << std::hex << "pattern 0x" << pattern;
    EXPECT_EQ(std::signbit(got), std::signbit(reference)) << std::hex << "pattern 0x" << pattern;
  } else {
    EXPECT_TRUE(same_value(reference, got))
        << std::hex << "pattern 0x" << pattern << std::dec << ": expected " << reference << ", got "
        << got;
  }
}

TEST(DType, F16ToF32AllPatterns) {
  int subnormals = 0, nans = 0, infs = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const double reference = ref_f16(static_cast<uint16_t>(h));
    const float got = hfport::f16_to_f32(static_cast<uint16_t>(h));
    expect_widened(reference, got, h);
    if (std::isnan(reference)) ++nans;
    if (std::isinf(reference)) ++infs;
    if (reference != 0 && std::fabs(reference) < 0x1p-14) ++subnormals;
  }
  // The references themselves cover the special classes (2 x 1023 NaN, 2 inf, 2 x 1023 subnormal).
  EXPECT_EQ(nans, 2046);
  EXPECT_EQ(infs, 2);
  EXPECT_EQ(subnormals, 2046);
  // Spot values any reader of the IEEE spec knows.
  EXPECT_EQ(hfport::f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(hfport::f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(hfport::f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(hfport::f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(hfport::f16_to_f32(0x03FF), 1023 * 0x1p-24f);
  EXPECT_EQ(float_bits(hfport::f16_to_f32(0x8000)), 0x80000000u);
}

TEST(DType, BF16ToF32AllPatterns) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float got = hfport::bf16_to_f32(static_cast<uint16_t>(b));
    expect_widened(ref_bf16(static_cast<uint16_t>(b)), got, b);
    // bf16 is the top half of an f32: the widening keeps every bit, NaN payloads included.
    EXPECT_EQ(float_bits(got), b << 16) << std::hex << b;
  }
  EXPECT_EQ(hfport::bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(hfport::bf16_to_f32(0x0001), 0x1p-133f);
}

TEST(DType, NarrowingInvertsWideningOnEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    if (std::isnan(ref_f16(bits))) {
      EXPECT_TRUE(std::isnan(hfport::f16_to_f32(hfport::f32_to_f16(hfport::f16_to_f32(bits)))));
    } else {
      EXPECT_EQ(hfport::f32_to_f16(hfport::f16_to_f32(bits)), bits) << std::hex << h;
    }
    if (std::isnan(ref_bf16(bits))) {
      EXPECT_TRUE(std::isnan(hfport::bf16_to_f32(hfport::f32_to_bf16(hfport::bf16_to_f32(bits)))));
    } else {
      EXPECT_EQ(hfport::f32_to_bf16(hfport::bf16_to_f32(bits)), bits) << std::hex << h;
    }
  }
}

struct Narrowing {
  float input;
  uint16_t expected;
};

TEST(DType, F32ToF16RoundsTiesToEven) {
  const Narrowing cases[] = {
      {1.0f + 0x1p-11f, 0x3C00},                 // tie between 0x3C00 and 0x3C01: even is 0x3C00
      {1.0f + 3 * 0x1p-11f, 0x3C02},             // tie between 0x3C01 and 0x3C02: even is 0x3C02
      {1.0f + 0x1p-11f + 0x1p-23f, 0x3C01},      // just above the tie
      {1.0f + 0x1p-11f - 0x1p-24f, 0x3C00},      // just below the tie
      {-(1.0f + 3 * 0x1p-11f), 0xBC02},
      {2047.0f, 0x67FF},                         // exact
      {2049.0f, 0x6800},                         // tie between 2048 and 2050: 2048 (even)
      {2051.0f, 0x6802},                         // tie between 2050 and 2052: 2052 (even)
      {65504.0f, 0x7BFF},                        // the largest half
      {65519.996f, 0x7BFF},                      // below the overflow tie
      {65520.0f, 0x7C00},                        // the overflow tie rounds to even: infinity
      {-65520.0f, 0xFC00},
      {1e10f, 0x7C00},
      {0x1p-14f, 0x0400},                        // the smallest normal
      {0x1p-24f, 0x0001},                        // the smallest subnormal
      {0x1p-25f, 0x0000},                        // tie between 0 and the smallest subnormal: 0
      {0x1p-25f + 0x1p-48f, 0x0001},             // just above it
      {-0x1p-25f, 0x8000},                       // negative zero keeps its sign
      {3 * 0x1p-25f, 0x0002},                    // tie between subnormals 1 and 2: 2
      {5 * 0x1p-25f, 0x0002},                    // tie between subnormals 2 and 3: 2
      {1023.5f * 0x1p-24f, 0x0400},              // between the largest subnormal and 2^-14: even
      {1022.5f * 0x1p-24f, 0x03FE},
      {0x1p-30f, 0x0000},
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {INFINITY, 0x7C00},
      {-INFINITY, 0xFC00},
  };
  for (const Narrowing& c : cases) {
    EXPECT_EQ(hfport::f32_to_f16(c.input), c.expected)
        << std::hexfloat << c.input << std::hex << " (bits 0x" << float_bits(c.input) << ")";
  }
}

TEST(DType, F32ToBF16RoundsTiesToEven) {
  const Narrowing cases[] = {
      {1.0f + 0x1p-8f, 0x3F80},                  // tie: even is 0x3F80
      {1.0f + 3 * 0x1p-8f, 0x3F82},              // tie: even is 0x3F82
      {1.0f + 0x1p-8f + 0x1p-23f, 0x3F81},
      {-(1.0f + 0x1p-8f), 0xBF80},
      {0x1.fep127f, 0x7F7F},                     // the largest bf16
      {0x1.ffp127f, 0x7F80},                     // the overflow tie: to even, infinity
      {0x1.fefffep127f, 0x7F7F},                 // just below it
      {FLT_MAX, 0x7F80},
      {0x1p-126f, 0x0080},
      {std::bit_cast<float>(0x00008000u), 0x0000},  // subnormal tie between 0 and 0x0001
      {std::bit_cast<float>(0x00018000u), 0x0002},  // tie between 0x0001 and 0x0002
      {std::bit_cast<float>(0x00008001u), 0x0001},
      {std::bit_cast<float>(0x807FFFFFu), 0x8080},  // largest negative subnormal rounds up a binade
      {-0.0f, 0x8000},
      {INFINITY, 0x7F80},
      {-INFINITY, 0xFF80},
  };
  for (const Narrowing& c : cases) {
    EXPECT_EQ(hfport::f32_to_bf16(c.input), c.expected)
        << std::hexfloat << c.input << std::hex << " (bits 0x" << float_bits(c.input) << ")";
  }
}

TEST(DType, NarrowingKeepsEveryNaNANaN) {
  // Signalling NaNs with only low payload bits set would become infinity if the payload were
  // simply shifted out or rounded away.
  for (uint32_t bits : {0x7F800001u, 0xFF800001u, 0x7F801000u, 0x7F80FFFFu, 0x7FC00000u,
                        0xFFFFFFFFu, 0x7FBFFFFFu, 0x7F800100u}) {
    const float nan = std::bit_cast<float>(bits);
    const uint16_t h = hfport::f32_to_f16(nan);
    const uint16_t b = hfport::f32_to_bf16(nan);
    EXPECT_TRUE(std::isnan(ref_f16(h))) << std::hex << bits << " -> f16 " << h;
    EXPECT_TRUE(std::isnan(ref_bf16(b))) << std::hex << bits << " -> bf16 " << b;
    EXPECT_EQ(std::signbit(ref_f16(h)), (bits >> 31) != 0) << std::hex << bits;
    EXPECT_EQ(std::signbit(ref_bf16(b)), (bits >> 31) != 0) << std::hex << bits;
  }
}

// All finite non-negative values of a half format in increasing order (its bit patterns
// 0 .. largest finite are already sorted), decoded by the reference.
std::vector<double> finite_table(double (*decode)(uint16_t), uint16_t largest_finite) {
  std::vector<double> values;
  for (uint32_t b = 0; b <= largest_finite; ++b) values.push_back(decode(static_cast<uint16_t>(b)));
  return values;
}

// The pattern nearest to x in `table` (ties to the even pattern); past the largest finite value
// by half an ulp or more, infinity (`inf_pattern`, whose mantissa is even).
uint16_t nearest_pattern(double x, const std::vector<double>& table, uint16_t inf_pattern,
                         uint16_t sign_bit) {
  const uint16_t sign = std::signbit(x) ? sign_bit : 0;
  const double a = std::fabs(x);
  const double largest = table.back();
  const double ulp = largest - table[table.size() - 2];
  if (a >= largest + ulp / 2) return sign | inf_pattern;
  auto above = std::lower_bound(table.begin(), table.end(), a);
  if (above == table.end()) return sign | static_cast<uint16_t>(table.size() - 1);
  const auto hi = static_cast<uint16_t>(above - table.begin());
  if (*above == a || hi == 0) return sign | hi;
  const uint16_t lo = hi - 1;
  const double mid = (table[lo] + table[hi]) / 2;  // exact: a half has far fewer bits than a double
  if (a < mid) return sign | lo;
  if (a > mid) return sign | hi;
  return sign | ((lo & 1u) == 0 ? lo : hi);
}

// Random f32 inputs: uniformly random bit patterns, and values spread over (and just past) each
// half format's range, and values within a few f32 ulps of a rounding tie.
std::vector<float> random_floats(std::mt19937& rng, const std::vector<double>& table,
                                 size_t count) {
  std::vector<float> out;
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<size_t> pick(0, table.size() - 2);
  std::uniform_int_distribution<int> nudge(-3, 3);
  while (out.size() < count) {
    const float f = std::bit_cast<float>(bits(rng));
    if (!std::isnan(f)) out.push_back(f);
    const size_t i = pick(rng);
    const auto mid = static_cast<float>((table[i] + table[i + 1]) / 2);
    uint32_t m = float_bits(mid) + static_cast<uint32_t>(nudge(rng));
    out.push_back((bits(rng) & 1 ? -1.0f : 1.0f) * std::bit_cast<float>(m));
    out.push_back(std::ldexp(std::bit_cast<float>((bits(rng) & 0x007FFFFFu) | 0x3F800000u),
                             static_cast<int>(bits(rng) % 300) - 150));
  }
  return out;
}

TEST(DType, F32ToF16IsTheNearestHalfOnRandomFloats) {
  const std::vector<double> table = finite_table(ref_f16, 0x7BFF);
  std::mt19937 rng(20240611);
  for (float f : random_floats(rng, table, 300000)) {
    const uint16_t expected = nearest_pattern(f, table, 0x7C00, 0x8000);
    ASSERT_EQ(hfport::f32_to_f16(f), expected)
        << std::hexfloat << f << std::hex << " (bits 0x" << float_bits(f) << ")";
    // The second reference (scaled nearbyint) agrees with the table search.
    ASSERT_TRUE(same_value(ref_round_f16(f), ref_f16(expected))) << std::hexfloat << f;
  }
}

TEST(DType, F32ToBF16IsTheNearestBF16OnRandomFloats) {
  const std::vector<double> table = finite_table(ref_bf16, 0x7F7F);
  std::mt19937 rng(77);
  for (float f : random_floats(rng, table, 300000)) {
    const uint16_t expected = nearest_pattern(f, table, 0x7F80, 0x8000);
    ASSERT_EQ(hfport::f32_to_bf16(f), expected)
        << std::hexfloat << f << std::hex << " (bits 0x" << float_bits(f) << ")";
    ASSERT_TRUE(same_value(ref_round_bf16(f), ref_bf16(expected))) << std::hexfloat << f;
  }
}

TEST(DType, F8E4M3AllPatterns) {
  int nans = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const double reference = ref_e4m3(static_cast<uint8_t>(b));
    if (std::isnan(reference)) ++nans;
    const float got = hfport::f8_e4m3_to_f32(static_cast<uint8_t>(b));
    if (std::isnan(reference)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << b;
    } else {
      EXPECT_TRUE(same_value(reference, got)) << std::hex << b << ": " << reference << " " << got;
    }
  }
  EXPECT_EQ(nans, 2);  // E4M3FN: only 0x7F and 0xFF; no infinities
  EXPECT_EQ(hfport::f8_e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(hfport::f8_e4m3_to_f32(0x78), 256.0f);  // exponent all ones is still a number
  EXPECT_EQ(hfport::f8_e4m3_to_f32(0x08), 0x1p-6f);
  EXPECT_EQ(hfport::f8_e4m3_to_f32(0x01), 0x1p-9f);
  EXPECT_EQ(hfport::f8_e4m3_to_f32(0xC0), -2.0f);
  EXPECT_EQ(float_bits(hfport::f8_e4m3_to_f32(0x80)), 0x80000000u);
}

TEST(DType, F8E5M2AllPatterns) {
  int nans = 0, infs = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const double reference = ref_e5m2(static_cast<uint8_t>(b));
    if (std::isnan(reference)) ++nans;
    if (std::isinf(reference)) ++infs;
    const float got = hfport::f8_e5m2_to_f32(static_cast<uint8_t>(b));
    if (std::isnan(reference)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << b;
    } else {
      EXPECT_TRUE(same_value(reference, got)) << std::hex << b << ": " << reference << " " << got;
    }
  }
  EXPECT_EQ(nans, 6);
  EXPECT_EQ(infs, 2);
  EXPECT_EQ(hfport::f8_e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_EQ(hfport::f8_e5m2_to_f32(0x7C), INFINITY);
  EXPECT_EQ(hfport::f8_e5m2_to_f32(0x01), 0x1p-16f);
  EXPECT_EQ(hfport::f8_e5m2_to_f32(0x3C), 1.0f);
}

template <typename T>
double load(DType dtype, T value) {
  return hfport::load_as_f64(&value, dtype, 0);
}

TEST(DType, LoadAsF64ReadsEachDTypeAtItsIndex) {
  EXPECT_EQ(load(DType::BOOL, uint8_t{0}), 0.0);
  EXPECT_EQ(load(DType::BOOL, uint8_t{1}), 1.0);
  EXPECT_EQ(load(DType::U8, uint8_t{255}), 255.0);
  EXPECT_EQ(load(DType::I8, int8_t{-128}), -128.0);
  EXPECT_EQ(load(DType::I16, int16_t{-32768}), -32768.0);
  EXPECT_EQ(load(DType::U16, uint16_t{65535}), 65535.0);
  EXPECT_EQ(load(DType::F16, uint16_t{0xC500}), -5.0);
  EXPECT_EQ(load(DType::BF16, uint16_t{0x4049}), 3.140625);
  EXPECT_EQ(load(DType::I32, int32_t{-2147483647 - 1}), -2147483648.0);
  EXPECT_EQ(load(DType::U32, uint32_t{4294967295u}), 4294967295.0);
  EXPECT_EQ(load(DType::F32, 0.1f), static_cast<double>(0.1f));
  EXPECT_EQ(load(DType::I64, int64_t{-(int64_t{1} << 62)}), -0x1p62);
  EXPECT_EQ(load(DType::U64, ~uint64_t{0}), 0x1p64);
  EXPECT_EQ(load(DType::F64, 0.1), 0.1);
  EXPECT_EQ(load(DType::F8_E4M3, uint8_t{0x7E}), 448.0);
  EXPECT_EQ(load(DType::F8_E5M2, uint8_t{0xBC}), -1.0);

  // The index counts elements, not bytes, and reads unaligned buffers.
  alignas(8) unsigned char buffer[1 + 4 * sizeof(int32_t)] = {};
  const int32_t values[4] = {7, -8, 9, -10};
  std::memcpy(buffer + 1, values, sizeof values);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(hfport::load_as_f64(buffer + 1, DType::I32, i), values[i]);
  }
}

}  // namespace
