// cast() and tensor_stats() against references written here: every source dtype cast to F32, F64,
// F16 and BF16 is compared with the exact source value rounded once to the target (float sources
// decoded from their fields, integers kept as integers), on every bit pattern of the 8- and 16-bit
// types and on random and tie-adjacent values of the wider ones. Statistics are compared with a
// float64 two-pass computation. Both must not depend on the thread count.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/cast.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/stats.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "scoped_threads.h"
#include "float_reference.h"

namespace {

using hfport::DType;
using hfport::Tensor;
using namespace hfport_test;

TEST(Parallel, ThreadCountFollowsTheEnvironment) {
  ScopedThreads restore_afterwards(3);
  EXPECT_EQ(hfport::default_thread_count(), 3);
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const char* ignored : {"zero", "0", "-2", ""}) {
    ::setenv("HFPORT_NUM_THREADS", ignored, 1);
    EXPECT_EQ(hfport::default_thread_count(), hardware) << "'" << ignored << "'";
  }
  ::unsetenv("HFPORT_NUM_THREADS");
  EXPECT_EQ(hfport::default_thread_count(), hardware);
}

TEST(Parallel, ParallelForCoversEveryIndexOnceAndRethrows) {
  ScopedThreads threads(4);
  for (int64_t n : {0, 1, 7, 100, 1001}) {
    std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
    hfport::parallel_for(n, 10, [&](int64_t begin, int64_t end) {
      EXPECT_LT(begin, end);
      for (int64_t i = begin; i < end; ++i) ++seen[static_cast<size_t>(i)];
    });
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], 1) << n << " " << i;
  }
  EXPECT_THROW(hfport::parallel_for(1000, 1,
                                    [](int64_t begin, int64_t) {
                                      if (begin > 0) throw std::runtime_error("chunk failed");
                                    }),
               std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// Cast

// One source element, exactly: an integer as sign and magnitude, a float as a double.
struct Exact {
  bool integer = false;
  bool negative = false;
  uint64_t magnitude = 0;
  double value = 0;
};

Exact from_signed(int64_t v) {
  const uint64_t magnitude =
      v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  return {true, v < 0, magnitude, 0};
}
Exact from_unsigned(uint64_t v) { return {true, false, v, 0}; }
Exact from_float(double v) { return {false, false, 0, v}; }

template <typename T>
T read_at(const std::byte* data, size_t i) {
  T v;
  std::memcpy(&v, data + i * sizeof(T), sizeof(T));
  return v;
}

Exact exact_element(const std::byte* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::BOOL: return from_unsigned(read_at<uint8_t>(data, i) != 0);
    case DType::U8: return from_unsigned(read_at<uint8_t>(data, i));
    case DType::I8: return from_signed(read_at<int8_t>(data, i));
    case DType::I16: return from_signed(read_at<int16_t>(data, i));
    case DType::U16: return from_unsigned(read_at<uint16_t>(data, i));
    case DType::F16: return from_float(ref_f16(read_at<uint16_t>(data, i)));
    case DType::BF16: return from_float(ref_bf16(read_at<uint16_t>(data, i)));
    case DType::I32: return from_signed(read_at<int32_t>(data, i));
    case DType::U32: return from_unsigned(read_at<uint32_t>(data, i));
    case DType::F32: return from_float(ref_f32(read_at<uint32_t>(data, i)));
    case DType::I64: return from_signed(read_at<int64_t>(data, i));
    case DType::U64: return from_unsigned(read_at<uint64_t>(data, i));
    case DType::F64: return from_float(read_at<double>(data, i));
    case DType::F8_E4M3: return from_float(ref_e4m3(read_at<uint8_t>(data, i)));
    case DType::F8_E5M2: return from_float(ref_e5m2(read_at<uint8_t>(data, i)));
  }
  throw std::logic_error("dtype");
}

double as_double(const Exact& e) {
  if (!e.integer) return e.value;
  return ref_round_integer(e.negative, e.magnitude, 53);
}

// The exact value rounded once, to nearest even, into `target`.
double expected_cast(const Exact& e, DType target) {
  switch (target) {
    case DType::F64: return as_double(e);
    case DType::F32: return e.integer ? ref_round_integer(e.negative, e.magnitude, 24)
                                      : ref_round_f32(e.value);
    case DType::F16: {
      if (!e.integer) return ref_round_f16(e.value);
      const double r = ref_round_integer(e.negative, e.magnitude, 11);
      return std::fabs(r) > kF16Max ? std::copysign(kInf, r) : r;
    }
    case DType::BF16: return e.integer ? ref_round_integer(e.negative, e.magnitude, 8)
                                       : ref_round_bf16(e.value);
    default: throw std::logic_error("not a cast target");
  }
}

double output_element(const std::byte* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::F64: return read_at<double>(data, i);
    case DType::F32: return ref_f32(read_at<uint32_t>(data, i));
    case DType::F16: return ref_f16(read_at<uint16_t>(data, i));
    case DType::BF16: return ref_bf16(read_at<uint16_t>(data, i));
    default: throw std::logic_error("not a cast target");
  }
}

std::string element_bytes(const std::byte* data, DType dtype, size_t i) {
  const size_t item = hfport::dtype_size(dtype);
  std::string hex = "0x";
  for (size_t b = item; b-- > 0;) {  // most significant first
    char digits[3];
    std::snprintf(digits, sizeof digits, "%02x", static_cast<unsigned>(data[i * item + b]));
    hex += digits;
  }
  return hex;
}

// Element i of the output equals the source element (src_data, src_index(i)) rounded once.
template <typename SourceIndex>
void expect_cast_elements(const std::byte* src_data, DType src_dtype, const Tensor& out,
                          SourceIndex src_index) {
  int mismatches = 0;
  for (size_t i = 0; i < static_cast<size_t>(out.numel()); ++i) {
    const size_t s = src_index(i);
    const double want = expected_cast(exact_element(src_data, src_dtype, s), out.dtype());
    const double got = output_element(out.data(), out.dtype(), i);
    if (!same_value(want, got) && ++mismatches <= 5) {
      ADD_FAILURE() << hfport::dtype_name(src_dtype) << " -> " << hfport::dtype_name(out.dtype())
                    << ": source " << element_bytes(src_data, src_dtype, s) << " gave "
                    << std::hexfloat << got << ", expected " << want;
    }
  }
  EXPECT_EQ(mismatches, 0) << hfport::dtype_name(src_dtype) << " -> "
                           << hfport::dtype_name(out.dtype());
}

Tensor tensor_from(DType dtype, const std::vector<uint8_t>& bytes) {
  const size_t item = hfport::dtype_size(dtype);
  Tensor t = Tensor::empty(dtype, {static_cast<int64_t>(bytes.size() / item)});
  std::memcpy(t.data(), bytes.data(), bytes.size());
  return t;
}

template <typename T>
void append(std::vector<uint8_t>& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

// Integers of every bit width, both signs where the type has them, plus the extremes and values
// whose correct rounding differs from rounding twice (through double or through f32).
template <typename T>
std::vector<uint8_t> integer_values(std::mt19937_64& rng, size_t random_count) {
  std::vector<uint8_t> out;
  using Limits = std::numeric_limits<T>;
  for (T v : {T(0), T(1), Limits::max(), Limits::min(), T(Limits::max() - 1)}) append(out, v);
  const uint64_t witnesses[] = {
      65504, 65519, 65520, 65535, (1u << 24) + 1, (1u << 24) + 3,
      (1u << 24) + (1u << 16) + 1,                          // 32-bit: bf16 via f32 rounds down
      (1u << 31) + (1u << 23) + 1,
      (uint64_t{1} << 53) + 1, (uint64_t{1} << 60) + (uint64_t{1} << 36) + 1,  // f32 via double
      (uint64_t{1} << 62) + (uint64_t{1} << 38) + 1, (uint64_t{1} << 63) + (uint64_t{1} << 39) + 1,
      (uint64_t{1} << 40) + (uint64_t{1} << 32) + 1,       // bf16 via f32
  };
  for (uint64_t w : witnesses) {
    if (w > static_cast<uint64_t>(Limits::max())) continue;
    append(out, static_cast<T>(w));
    if (Limits::is_signed) append(out, static_cast<T>(-static_cast<T>(w)));
  }
  for (size_t i = 0; i < random_count; ++i) {
    const int bits = 1 + static_cast<int>(rng() % (sizeof(T) * 8));
    uint64_t v = rng() >> (64 - bits);
    append(out, static_cast<T>(v));
  }
  return out;
}

// Doubles near every kind of rounding tie, and random ones.
std::vector<uint8_t> f64_values(std::mt19937_64& rng, size_t random_count) {
  std::vector<uint8_t> out;
  const double specials[] = {0.0, -0.0, kInf, -kInf, kNaN, -kNaN, 1.0, -1.0,
                             1 + 0x1p-11 + 0x1p-40,  // just above an f16 tie; f32 lands on it
                             1 + 0x1p-8 + 0x1p-40,   // the same for bf16
                             -(1 + 0x1p-11 + 0x1p-40), 65520 - 0x1p-30, 65520.0, 65504.0,
                             0x1p-25 + 0x1p-60,      // above the f16 underflow tie
                             0x1.ffp127 - 0x1p90,    // below the bf16 overflow tie
                             std::nextafter(0x1.ffffffp127, 0.0), 0x1.ffffffp127, 1e300, -1e300,
                             4.9e-324, 0x1p-149, 0x1p-150, 0x1p-150 + 0x1p-200, 0x1.8p-149};
  for (double v : specials) append(out, v);
  std::uniform_int_distribution<int> table_index(0, 0x7BFE);
  std::uniform_int_distribution<int> bf16_index(0, 0x7F7E);
  std::uniform_int_distribution<int> nudge(-3, 3);
  std::uniform_int_distribution<int> tiny(-60, -25);
  for (size_t i = 0; i < random_count; ++i) {
    append(out, std::bit_cast<double>(rng()));
    const int h = table_index(rng);
    const double mid16 =
        (ref_f16(static_cast<uint16_t>(h)) + ref_f16(static_cast<uint16_t>(h + 1))) / 2;
    const int b = bf16_index(rng);
    const double midb =
        (ref_bf16(static_cast<uint16_t>(b)) + ref_bf16(static_cast<uint16_t>(b + 1))) / 2;
    for (double mid : {mid16, midb}) {
      const double sign = rng() & 1 ? -1.0 : 1.0;
      append(out, sign * std::bit_cast<double>(std::bit_cast<uint64_t>(mid) + nudge(rng)));
      append(out, sign * mid * (1 + std::ldexp(nudge(rng), tiny(rng))));
    }
  }
  return out;
}

std::vector<uint8_t> f32_values(std::mt19937_64& rng, size_t random_count) {
  std::vector<uint8_t> out;
  for (double v :
       {0.0, -0.0, kInf, -kInf, kNaN, 65519.99609375, 65520.0, 1 + 0x1p-11, 1 + 0x1p-8}) {
    append(out, static_cast<float>(v));
  }
  for (uint32_t bits : {0x7F800001u, 0xFF800001u, 0x00000001u, 0x00008000u}) append(out, bits);
  std::uniform_int_distribution<int> table_index(0, 0x7BFE);
  std::uniform_int_distribution<int> nudge(-2, 2);
  for (size_t i = 0; i < random_count; ++i) {
    append(out, static_cast<uint32_t>(rng()));
    const int h = table_index(rng);
    const auto mid = static_cast<float>(
        (ref_f16(static_cast<uint16_t>(h)) + ref_f16(static_cast<uint16_t>(h + 1))) / 2);
    append(out, std::bit_cast<uint32_t>(mid) + static_cast<uint32_t>(nudge(rng)));
  }
  return out;
}

// Every bit pattern for the 8- and 16-bit types; a sample for the wider ones.
std::vector<uint8_t> source_values(DType dtype, std::mt19937_64& rng, size_t random_count = 20000) {
  std::vector<uint8_t> out;
  switch (dtype) {
    case DType::BOOL: return {0, 1, 1, 0, 1};
    case DType::U8: case DType::I8: case DType::F8_E4M3: case DType::F8_E5M2:
      for (int b = 0; b < 256; ++b) out.push_back(static_cast<uint8_t>(b));
      return out;
    case DType::I16: case DType::U16: case DType::F16: case DType::BF16:
      for (uint32_t b = 0; b < 65536; ++b) append(out, static_cast<uint16_t>(b));
      return out;
    case DType::I32: return integer_values<int32_t>(rng, random_count);
    case DType::U32: return integer_values<uint32_t>(rng, random_count);
    case DType::I64: return integer_values<int64_t>(rng, random_count);
    case DType::U64: return integer_values<uint64_t>(rng, random_count);
    case DType::F32: return f32_values(rng, random_count);
    case DType::F64: return f64_values(rng, random_count);
  }
  return out;
}

const DType kTargets[] = {DType::F32, DType::F64, DType::F16, DType::BF16};

TEST(Cast, EverySourceDTypeToEveryFloatTarget) {
  std::mt19937_64 rng(42);
  for (int d = 0; d < hfport::kDTypeCount; ++d) {
    const auto src_dtype = static_cast<DType>(d);
    const Tensor src = tensor_from(src_dtype, source_values(src_dtype, rng));
    for (DType target : kTargets) {
      const Tensor out = hfport::cast(src, target);
      if (target == src_dtype) {
        EXPECT_EQ(out.data(), src.data()) << "a cast to the same dtype returns the tensor itself";
        continue;
      }
      ASSERT_EQ(out.dtype(), target);
      ASSERT_EQ(out.shape(), src.shape());
      ASSERT_TRUE(out.is_contiguous());
      expect_cast_elements(src.data(), src_dtype, out, [](size_t i) { return i; });
    }
  }
}

TEST(Cast, StridedSourceIsReadInViewOrder) {
  std::mt19937_64 rng(7);
  const Tensor flat = tensor_from(DType::F16, source_values(DType::F16, rng));
  const Tensor transposed(flat.storage(), 0, DType::F16, {256, 256}, {1, 256});
  for (DType target : {DType::F32, DType::BF16}) {
    const Tensor out = hfport::cast(transposed, target);
    EXPECT_EQ(out.shape(), (hfport::Shape{256, 256}));
    // out[i][j] is transposed[i][j], which is flat[j * 256 + i].
    expect_cast_elements(flat.data(), DType::F16, out,
                         [](size_t k) { return (k % 256) * 256 + k / 256; });
  }
  const Tensor every_third = flat.slice(0, 1, 65536, 3);
  const Tensor out = hfport::cast(every_third, DType::F64);
  expect_cast_elements(flat.data(), DType::F16, out, [](size_t k) { return 1 + 3 * k; });
}

TEST(Cast, UnalignedSourceBuffers) {
  // A safetensors data buffer need not be aligned for its dtype (the header length is free), so
  // casts must read elements at any address.
  std::mt19937_64 rng(11);
  for (DType src_dtype :
       {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::I32}) {
    const std::vector<uint8_t> values = source_values(src_dtype, rng, 3000);
    auto storage = std::make_shared<hfport::HostStorage>(values.size() + 8);
    for (size_t shift = 1; shift < 8; shift += 2) {
      std::memcpy(storage->data() + shift, values.data(), values.size());
      const Tensor src(storage, shift, src_dtype,
                       {static_cast<int64_t>(values.size() / hfport::dtype_size(src_dtype))}, {1});
      for (DType target : kTargets) {
        if (target == src_dtype) continue;
        SCOPED_TRACE("shift " + std::to_string(shift));
        expect_cast_elements(src.data(), src_dtype, hfport::cast(src, target),
                             [](size_t i) { return i; });
      }
    }
  }
}

TEST(Cast, ThreadCountDoesNotChangeTheResult) {
  std::mt19937_64 rng(3);
  const int64_t n = 3 * (int64_t{1} << 18) + 5;  // several chunks of kCastGrain, and a ragged end
  const std::pair<DType, DType> pairs[] = {{DType::BF16, DType::F32}, {DType::F16, DType::F32},
                                           {DType::F32, DType::F16}, {DType::F32, DType::BF16},
                                           {DType::F64, DType::BF16}, {DType::I64, DType::F32}};
  for (const auto& [src_dtype, target] : pairs) {
    SCOPED_TRACE(std::string(hfport::dtype_name(src_dtype)) + " -> " +
                 std::string(hfport::dtype_name(target)));
    const size_t item = hfport::dtype_size(src_dtype);
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * item);
    const std::vector<uint8_t> values = source_values(src_dtype, rng, 2000);
    for (size_t i = 0; i < bytes.size(); i += item) {
      std::memcpy(&bytes[i], &values[(rng() % (values.size() / item)) * item], item);
    }
    const Tensor src = tensor_from(src_dtype, bytes);
    Tensor one, many;
    {
      ScopedThreads threads(1);
      one = hfport::cast(src, target);
    }
    {
      ScopedThreads threads(7);
      many = hfport::cast(src, target);
    }
    ASSERT_EQ(one.nbytes(), many.nbytes());
    EXPECT_EQ(std::memcmp(one.data(), many.data(), one.nbytes()), 0);
    expect_cast_elements(src.data(), src_dtype, many, [](size_t i) { return i; });
  }
}

TEST(Cast, LargeBf16ToF32TakesTheStreamingPathAtAnyAlignment) {
  // From 2^21 elements a call uses AVX2 streaming stores with a scalar head up to a 32-byte
  // boundary and a scalar tail; shift the output by 0..7 floats and the source by one byte.
  std::mt19937_64 rng(5);
  const int64_t n = (int64_t{1} << 21) + 37;
  std::vector<uint8_t> src(static_cast<size_t>(n) * 2 + 1);
  for (auto& b : src) b = static_cast<uint8_t>(rng());
  std::vector<uint32_t> dst(static_cast<size_t>(n) + 8);
  for (int shift = 0; shift < 8; shift += 3) {
    SCOPED_TRACE("output shifted by " + std::to_string(shift) + " floats");
    std::fill(dst.begin(), dst.end(), 0xFFFFFFFFu);
    hfport::cast_contiguous(src.data() + 1, DType::BF16, dst.data() + shift, DType::F32, n);
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t bits = static_cast<uint32_t>(src[1 + 2 * i]) |
                            static_cast<uint32_t>(src[2 + 2 * i]) << 8;  // little-endian bf16
      wrong += dst[shift + i] != bits << 16;
    }
    EXPECT_EQ(wrong, 0);
    for (int i = 0; i < shift; ++i) EXPECT_EQ(dst[i], 0xFFFFFFFFu);  // nothing written before
    EXPECT_EQ(dst[shift + n], 0xFFFFFFFFu);                          // nor after
  }
}

TEST(Cast, EmptyAndScalarTensors) {
  const Tensor empty = Tensor::empty(DType::BF16, {0, 3});
  const Tensor out = hfport::cast(empty, DType::F32);
  EXPECT_EQ(out.shape(), (hfport::Shape{0, 3}));
  EXPECT_EQ(out.numel(), 0);
  Tensor scalar = Tensor::empty(DType::I16, {});
  scalar.data_as<int16_t>()[0] = -7;
  const Tensor f = hfport::cast(scalar, DType::F16);
  EXPECT_TRUE(f.shape().empty());
  EXPECT_EQ(ref_f16(f.data_as<uint16_t>()[0]), -7.0);
}

TEST(Cast, NonFloatTargetsAreRefused) {
  const Tensor t = Tensor::zeros(DType::F32, {2});
  for (DType target : {DType::BOOL, DType::U8, DType::I8, DType::I16, DType::U16, DType::I32,
                       DType::U32, DType::I64, DType::U64, DType::F8_E4M3, DType::F8_E5M2}) {
    const std::string name(hfport::dtype_name(target));
    EXPECT_TRUE(throws_exactly<hfport::DTypeConversionError>(
        [&] { hfport::cast(t, target); }, {"F32", name, "F32, F64, F16 or BF16"}))
        << name;
  }
  float x = 1;
  uint8_t y = 0;
  EXPECT_TRUE(throws_exactly<hfport::DTypeConversionError>(
      [&] { hfport::cast_contiguous(&x, DType::F32, &y, DType::U8, 1); }, {"F32", "U8"}));
}

Tensor device_tensor(std::vector<float>& host) {
  auto storage = std::make_shared<hfport::ExternalStorage>(
      reinterpret_cast<std::byte*>(host.data()), host.size() * sizeof(float),
      hfport::Device{hfport::DeviceType::CUDA, 0}, nullptr);
  return Tensor(storage, 0, DType::F32, {static_cast<int64_t>(host.size())}, {1});
}

TEST(Cast, DeviceTensorsAreRefused) {
  std::vector<float> host(8, 1.0f);
  const Tensor on_gpu = device_tensor(host);
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { hfport::cast(on_gpu, DType::F16); },
                                                  {"CUDA"}));
}

// ---------------------------------------------------------------------------------------------
// Statistics

struct RefStats {
  int64_t finite = 0, nan = 0, inf = 0;
  double mean = kNaN, std = kNaN, min = kNaN, max = kNaN, max_abs = 0;
};

// Two passes in float64: mean first, then the sum of squared deviations.
RefStats two_pass(const std::vector<double>& values) {
  RefStats r;
  double sum = 0;
  for (double v : values) {
    if (std::isnan(v)) {
      ++r.nan;
    } else if (std::isinf(v)) {
      ++r.inf;
    } else {
      ++r.finite;
      sum += v;
      r.min = r.finite == 1 ? v : std::min(r.min, v);
      r.max = r.finite == 1 ? v : std::max(r.max, v);
      r.max_abs = std::max(r.max_abs, std::fabs(v));
    }
  }
  if (r.finite == 0) return r;
  r.mean = sum / static_cast<double>(r.finite);
  double m2 = 0;
  for (double v : values) {
    if (std::isfinite(v)) m2 += (v - r.mean) * (v - r.mean);
  }
  if (r.finite > 1) r.std = std::sqrt(m2 / static_cast<double>(r.finite - 1));
  return r;
}

std::vector<double> element_values(const Tensor& contiguous) {
  std::vector<double> out;
  for (size_t i = 0; i < static_cast<size_t>(contiguous.numel()); ++i) {
    out.push_back(as_double(exact_element(contiguous.data(), contiguous.dtype(), i)));
  }
  return out;
}

void expect_stats(const hfport::TensorStats& got, const std::vector<double>& values) {
  const RefStats want = two_pass(values);
  EXPECT_EQ(got.numel, static_cast<int64_t>(values.size()));
  EXPECT_EQ(got.finite, want.finite);
  EXPECT_EQ(got.nan_count, want.nan);
  EXPECT_EQ(got.inf_count, want.inf);
  // (0.0 and -0.0 tie for the minimum; either is right.)
  EXPECT_TRUE(same_value(got.min, want.min) || got.min == want.min) << got.min << " " << want.min;
  EXPECT_TRUE(same_value(got.max, want.max) || got.max == want.max) << got.max << " " << want.max;
  if (std::isnan(want.mean)) {
    EXPECT_TRUE(std::isnan(got.mean));
  } else {
    EXPECT_NEAR(got.mean, want.mean, 1e-12 * want.max_abs) << "n = " << values.size();
  }
  if (std::isnan(want.std)) {
    EXPECT_TRUE(std::isnan(got.std)) << got.std;
  } else {
    EXPECT_NEAR(got.std, want.std, 1e-9 * want.std + 1e-300) << "n = " << values.size();
  }
}

Tensor random_tensor(DType dtype, int64_t n, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(dtype, {n});
  const size_t item = hfport::dtype_size(dtype);
  if (dtype == DType::F64 || dtype == DType::F32) {
    // Values with a mean far from zero: a one-pass sum of squares would lose the variance.
    std::normal_distribution<double> normal(1e4, 3.0);
    for (int64_t i = 0; i < n; ++i) {
      const double v = normal(rng);
      if (dtype == DType::F64) {
        std::memcpy(t.data() + i * 8, &v, 8);
      } else {
        const auto f = static_cast<float>(v);
        std::memcpy(t.data() + i * 4, &f, 4);
      }
    }
  } else {
    for (size_t b = 0; b < static_cast<size_t>(n) * item; ++b) {
      t.data()[b] = static_cast<std::byte>(rng());
    }
    if (dtype == DType::BOOL) {
      for (int64_t i = 0; i < n; ++i) t.data()[i] &= std::byte{1};
    }
  }
  return t;
}

TEST(Stats, MatchTwoPassReferenceOnEveryDType) {
  std::mt19937_64 rng(8);
  for (int d = 0; d < hfport::kDTypeCount; ++d) {
    const auto dtype = static_cast<DType>(d);
    for (int64_t n : {1, 2, 3, 2047, 2048, 2049, 10007}) {
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " n=" + std::to_string(n));
      const Tensor t = random_tensor(dtype, n, rng);
      expect_stats(hfport::tensor_stats(t), element_values(t));
    }
  }
}

TEST(Stats, SeveralChunksAndThreads) {
  std::mt19937_64 rng(9);
  const int64_t n = 3 * (int64_t{1} << 20) + 2049;  // three full work items and a ragged one
  for (DType dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(hfport::dtype_name(dtype));
    const Tensor t = random_tensor(dtype, n, rng);
    hfport::TensorStats one, many;
    {
      ScopedThreads threads(1);
      one = hfport::tensor_stats(t);
    }
    {
      ScopedThreads threads(5);
      many = hfport::tensor_stats(t);
    }
    expect_stats(many, element_values(t));
    // Bit for bit the same whatever the thread count.
    EXPECT_TRUE(same_value(one.mean, many.mean));
    EXPECT_TRUE(same_value(one.std, many.std));
    EXPECT_EQ(one.finite, many.finite);
    EXPECT_EQ(one.nan_count, many.nan_count);
  }
}

TEST(Stats, NaNAndInfinityAreCountedNotAveraged) {
  const std::vector<float> values = {1.0f, NAN, 3.0f, INFINITY, -INFINITY, -2.0f, NAN, 6.0f};
  Tensor t = Tensor::empty(DType::F32, {8});
  std::memcpy(t.data(), values.data(), sizeof(float) * 8);
  const hfport::TensorStats s = hfport::tensor_stats(t);
  EXPECT_EQ(s.numel, 8);
  EXPECT_EQ(s.finite, 4);
  EXPECT_EQ(s.nan_count, 2);
  EXPECT_EQ(s.inf_count, 2);
  EXPECT_EQ(s.mean, 2.0);                       // (1 + 3 - 2 + 6) / 4
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(34.0 / 3));  // deviations -1, 1, -4, 4; unbiased
  EXPECT_EQ(s.min, -2.0);
  EXPECT_EQ(s.max, 6.0);
}

TEST(Stats, DegenerateTensors) {
  const hfport::TensorStats empty = hfport::tensor_stats(Tensor::empty(DType::F16, {0, 4}));
  EXPECT_EQ(empty.numel, 0);
  EXPECT_EQ(empty.finite, 0);
  EXPECT_EQ(empty.nan_count, 0);
  EXPECT_EQ(empty.inf_count, 0);
  EXPECT_TRUE(std::isnan(empty.mean));
  EXPECT_TRUE(std::isnan(empty.std));
  EXPECT_TRUE(std::isnan(empty.min));
  EXPECT_TRUE(std::isnan(empty.max));

  Tensor one = Tensor::empty(DType::F64, {1});
  one.data_as<double>()[0] = -3.5;
  const hfport::TensorStats single = hfport::tensor_stats(one);
  EXPECT_EQ(single.mean, -3.5);
  EXPECT_TRUE(std::isnan(single.std));  // unbiased std of one value
  EXPECT_EQ(single.min, -3.5);
  EXPECT_EQ(single.max, -3.5);

  Tensor bad = Tensor::empty(DType::BF16, {3});
  const uint16_t patterns[3] = {0x7FC0, 0xFF80, 0x7F80};  // NaN, -inf, +inf
  std::memcpy(bad.data(), patterns, sizeof patterns);
  const hfport::TensorStats none = hfport::tensor_stats(bad);
  EXPECT_EQ(none.finite, 0);
  EXPECT_EQ(none.nan_count, 1);
  EXPECT_EQ(none.inf_count, 2);
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_TRUE(std::isnan(none.min));
}

TEST(Stats, StridedViewsUseTheirOwnElements) {
  std::mt19937_64 rng(10);
  const Tensor flat = random_tensor(DType::F32, 3000, rng);
  const Tensor every_fifth = flat.slice(0, 2, 3000, 5);
  std::vector<double> picked;
  for (int64_t i = 2; i < 3000; i += 5) picked.push_back(flat.data_as<float>()[i]);
  expect_stats(hfport::tensor_stats(every_fifth), picked);
}

TEST(Stats, ManyTensorsReportProgressOnTheCallingThread) {
  std::mt19937_64 rng(12);
  std::vector<Tensor> tensors;
  for (int64_t n : {int64_t{5}, int64_t{0}, (int64_t{1} << 20) + 3, int64_t{1}, int64_t{40000},
                    int64_t{0}, int64_t{2048}}) {
    tensors.push_back(random_tensor(DType::F32, n, rng));
  }
  const auto caller = std::this_thread::get_id();
  std::vector<size_t> calls;
  bool all_on_caller = true;
  const auto stats = hfport::tensor_stats_many(tensors, [&](size_t done) {
    all_on_caller = all_on_caller && std::this_thread::get_id() == caller;
    calls.push_back(done);
  });
  ASSERT_EQ(stats.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(i);
    expect_stats(stats[i], element_values(tensors[i]));
  }
  EXPECT_TRUE(all_on_caller);
  ASSERT_FALSE(calls.empty());
  EXPECT_TRUE(std::is_sorted(calls.begin(), calls.end()));
  EXPECT_EQ(calls.back(), tensors.size());
  EXPECT_EQ(std::adjacent_find(calls.begin(), calls.end()), calls.end()) << "a count repeated";

  std::vector<size_t> none;
  EXPECT_TRUE(hfport::tensor_stats_many({}, [&](size_t done) { none.push_back(done); }).empty());
  ASSERT_FALSE(none.empty());
  EXPECT_EQ(none.back(), 0u);
}

TEST(Stats, ProgressCallbackErrorPropagates) {
  std::mt19937_64 rng(13);
  std::vector<Tensor> tensors;
  for (int i = 0; i < 4; ++i) tensors.push_back(random_tensor(DType::F32, 1 << 20, rng));
  EXPECT_THROW(hfport::tensor_stats_many(tensors, [](size_t) { throw std::runtime_error("stop"); }),
               std::runtime_error);
}

TEST(Stats, DeviceTensorsAreRefused) {
  std::vector<float> host(8, 1.0f);
  const Tensor on_gpu = device_tensor(host);
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { hfport::tensor_stats(on_gpu); }, {"CUDA"}));
}

}  // namespace
