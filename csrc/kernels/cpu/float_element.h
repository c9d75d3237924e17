// How the CPU kernels read and write the three floating element types they accept.
//
// Kernels compute in float32 whatever the storage type. The element tags are the compile-time
// switch between the storage types: `load` widens exactly, `store` rounds to nearest even (NaN
// stays NaN), so one kernel body templated on the tag serves f32, f16 and bf16.
#pragma once

#include <bit>
#include <cstdint>
#include <utility>

#include "core/dtype.h"

namespace hfport {

// Storage tags: the template argument of a kernel body.
struct F32Element {
  using Stored = float;
  static constexpr DType dtype = DType::F32;
  static float load(float v) { return v; }
  static float store(float v) { return v; }
};
struct BF16Element {
  using Stored = uint16_t;
  static constexpr DType dtype = DType::BF16;
  static float load(uint16_t bits) { return std::bit_cast<float>(uint32_t{bits} << 16); }
  static uint16_t store(float v) { return f32_to_bf16(v); }
};
struct F16Element {
  using Stored = uint16_t;
  static constexpr DType dtype = DType::F16;
  static float load(uint16_t bits) { return f16_to_f32(bits); }
  static uint16_t store(float v) { return f32_to_f16(v); }
};

// Calls fn(Tag{}) with the tag of `dtype`, one of F32, BF16, F16 (the caller has checked it).
template <typename Fn>
decltype(auto) dispatch_float(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::BF16: return std::forward<Fn>(fn)(BF16Element{});
    case DType::F16: return std::forward<Fn>(fn)(F16Element{});
    default: return std::forward<Fn>(fn)(F32Element{});
  }
}

}  // namespace hfport
