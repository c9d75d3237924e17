#include "core/dtype.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace hfport {

namespace {

struct DTypeInfo {
  std::string_view name;
  size_t size;
  bool floating;
};

// Indexed by the DType enum value.
constexpr DTypeInfo kInfo[kDTypeCount] = {
    {"BOOL", 1, false}, {"U8", 1, false},  {"I8", 1, false},      {"I16", 2, false},
    {"U16", 2, false},  {"F16", 2, true},  {"BF16", 2, true},     {"I32", 4, false},
    {"U32", 4, false},  {"F32", 4, true},  {"I64", 8, false},     {"U64", 8, false},
    {"F64", 8, true},   {"F8_E4M3", 1, true}, {"F8_E5M2", 1, true},
};

}  // namespace

size_t dtype_size(DType dtype) { return kInfo[static_cast<int>(dtype)].size; }
std::string_view dtype_name(DType dtype) { return kInfo[static_cast<int>(dtype)].name; }
bool dtype_is_floating(DType dtype) { return kInfo[static_cast<int>(dtype)].floating; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (int i = 0; i < kDTypeCount; ++i) {
    if (kInfo[i].name == name) return static_cast<DType>(i);
  }
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {  // inf / NaN: keep the payload
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half is a normal float: shift the leading one into place
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3FFu;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or NaN (NaN stays quiet NaN)
    return sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u);
  }
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds past 65504: infinity
  if (abs < 0x38800000u) {                        // below the smallest normal half: subnormal
    if (abs < 0x33000000u) return sign;           // under half the smallest subnormal: zero
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    const uint32_t rounded = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    const uint32_t up = (rest > half || (rest == half && (rounded & 1u))) ? 1u : 0u;
    return sign | static_cast<uint16_t>(rounded + up);
  }
  // Normal: rebias and round the 13 dropped bits to nearest even; a carry into the exponent is right.
  const uint32_t rebiased = abs - (112u << 23);
  const uint32_t rounded = rebiased + 0xFFFu + ((rebiased >> 13) & 1u);
  return sign | static_cast<uint16_t>(rounded >> 13);
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

float f8_e4m3_to_f32(uint8_t b) {
  const float sign = (b & 0x80u) ? -1.0f : 1.0f;
  const int exponent = (b >> 3) & 0xF;
  const int mantissa = b & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return std::nanf("");
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // 2^-6 * m/8
  return sign * std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
}

float f8_e5m2_to_f32(uint8_t b) { return f16_to_f32(static_cast<uint16_t>(b) << 8); }

double load_as_f64(const void* data, DType dtype, size_t i) {
  auto at = [&](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, static_cast<const char*>(data) + i * sizeof(v), sizeof(v));
    return v;
  };
  switch (dtype) {
    case DType::BOOL: return at(uint8_t{}) != 0 ? 1.0 : 0.0;
    case DType::U8: return at(uint8_t{});
    case DType::I8: return at(int8_t{});
    case DType::I16: return at(int16_t{});
    case DType::U16: return at(uint16_t{});
    case DType::F16: return f16_to_f32(at(uint16_t{}));
    case DType::BF16: return bf16_to_f32(at(uint16_t{}));
    case DType::I32: return at(int32_t{});
    case DType::U32: return at(uint32_t{});
    case DType::F32: return at(float{});
    case DType::I64: return static_cast<double>(at(int64_t{}));
    case DType::U64: return static_cast<double>(at(uint64_t{}));
    case DType::F64: return at(double{});
    case DType::F8_E4M3: return f8_e4m3_to_f32(at(uint8_t{}));
    case DType::F8_E5M2: return f8_e5m2_to_f32(at(uint8_t{}));
  }
  return 0.0;
}

}  // namespace hfport
