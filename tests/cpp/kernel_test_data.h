// Inputs and comparisons for the kernel tests: fresh random tensors (a new seed every run, printed
// on failure through the test's SCOPED_TRACE), outputs poisoned with NaN before a kernel runs so
// that an element it forgets to write fails the comparison, and the relative L2 error against a
// float64 reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>

#include "core/dtype.h"
#include "core/tensor.h"

namespace hfport_test {

inline std::mt19937_64& kernel_rng() {
  static std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

// Normal values * scale + shift, stored in `dtype` (F32, F16, BF16 or F64).
inline hfport::Tensor random_tensor(hfport::DType dtype, const hfport::Shape& shape,
                                    double scale = 1.0, double shift = 0.0) {
  hfport::Tensor t = hfport::Tensor::empty(dtype, shape);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = normal(kernel_rng()) * scale + shift;
    switch (dtype) {
      case hfport::DType::F64: t.data_as<double>()[i] = v; break;
      case hfport::DType::BF16: t.data_as<uint16_t>()[i] = hfport::f32_to_bf16(static_cast<float>(v)); break;
      case hfport::DType::F16: t.data_as<uint16_t>()[i] = hfport::f32_to_f16(static_cast<float>(v)); break;
      default: t.data_as<float>()[i] = static_cast<float>(v); break;
    }
  }
  return t;
}

// A contiguous tensor whose every element is NaN.
inline hfport::Tensor poisoned(hfport::DType dtype, const hfport::Shape& shape) {
  hfport::Tensor t = hfport::Tensor::empty(dtype, shape);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case hfport::DType::BF16: t.data_as<uint16_t>()[i] = hfport::f32_to_bf16(nan); break;
      case hfport::DType::F16: t.data_as<uint16_t>()[i] = hfport::f32_to_f16(nan); break;
      default: t.data_as<float>()[i] = nan; break;
    }
  }
  return t;
}

// The same bytes with dimensions a and b swapped (a strided view, like torch's transpose).
inline hfport::Tensor swap_dims(const hfport::Tensor& t, size_t a, size_t b) {
  hfport::Shape shape = t.shape(), strides = t.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return hfport::Tensor(t.storage(), t.byte_offset(), t.dtype(), shape, strides);
}

// ||got - want|| / ||want|| over contiguous tensors of one shape; NaN anywhere gives +inf.
inline double rel_l2(const hfport::Tensor& got, const hfport::Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double g = hfport::load_as_f64(got.data(), got.dtype(), i);
    const double w = hfport::load_as_f64(want.data(), want.dtype(), i);
    if (std::isnan(g) || std::isnan(w)) return std::numeric_limits<double>::infinity();
    diff += (g - w) * (g - w);
    norm += w * w;
  }
  return std::sqrt(diff / norm);
}

inline constexpr double kF32Tolerance = 1e-5;
inline constexpr double kBF16Tolerance = 1e-2;

// The relative L2 bound for results computed in `dtype`: kF32Tolerance for F32, else kBF16Tolerance.
inline double tolerance(hfport::DType dtype) {
  return dtype == hfport::DType::F32 ? kF32Tolerance : kBF16Tolerance;
}

// A selective-scan A of shape [dim, dstate], F32: -exp(normal * 0.5), every entry negative so the
// state decays.
inline hfport::Tensor negative_a(int64_t dim, int64_t dstate) {
  const hfport::Tensor log_a = random_tensor(hfport::DType::F64, {dim, dstate}, 0.5);
  hfport::Tensor a = hfport::Tensor::empty(hfport::DType::F32, {dim, dstate});
  for (int64_t i = 0; i < a.numel(); ++i) {
    a.data_as<float>()[i] = static_cast<float>(-std::exp(log_a.data_as<double>()[i]));
  }
  return a;
}

}  // namespace hfport_test
