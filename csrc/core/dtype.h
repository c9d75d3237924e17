// Element types, named as safetensors names them, with their sizes and the exact conversions
// between the half formats and float32 that casts and statistics use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hfport {

enum class DType : uint8_t {
  BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64, F8_E4M3, F8_E5M2,
};

inline constexpr int kDTypeCount = 15;

size_t dtype_size(DType dtype);             // bytes per element
std::string_view dtype_name(DType dtype);   // the safetensors name: "BF16"
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_floating(DType dtype);

// Exact widening; the narrowing ones round to nearest even and keep NaN a NaN.
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float f8_e4m3_to_f32(uint8_t bits);  // OCP E4M3FN: no infinities, 0x7F/0xFF are NaN
float f8_e5m2_to_f32(uint8_t bits);  // E5M2: the top byte of an IEEE half

// Element `index` of a buffer of `dtype` widened to double (for statistics and tests).
double load_as_f64(const void* data, DType dtype, size_t index);

}  // namespace hfport
