// The staged upload (core/cuda_upload.h). Everywhere: option and request checks, each before any
// work and naming what is wrong, and the DeviceError of a machine or build without CUDA. With a
// device: a ring of tiny staging buffers (odd sizes, so chunk boundaries cut tensors at odd
// places) carrying many tensors of odd byte sizes, tensors larger than the whole ring, strided
// sources, empty tensors and casts on the device, each result compared bit for bit with the host's
// own cast of the source; with one allocation and one per tensor; progress; and an upload that
// fails midway (its progress callback throws) leaving the next one working.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/cast.h"
#include "core/cuda_upload.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "cuda_test_support.h"
#include "kernel_test_data.h"

namespace {

using hfport::Device;
using hfport::DeviceType;
using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport::UploadOptions;
using hfport::UploadRequest;
using hfport_test::throws_exactly;

const Device kCpu{DeviceType::CPU, 0};
const Device kCuda0{DeviceType::CUDA, 0};

Tensor f32_tensor(const Shape& shape) { return hfport_test::random_tensor(DType::F32, shape); }

TEST(CudaUpload, OptionsOutOfRangeAreNamed) {
  for (int64_t bytes : {int64_t{0}, int64_t{-5}, (int64_t{1} << 34) + 1}) {
    UploadOptions options;
    options.staging_bytes = bytes;
    EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
        [&] { hfport::validate_upload_options(options); },
        {"staging_bytes", "got " + std::to_string(bytes)}));
  }
  for (int buffers : {0, -1, 65}) {
    UploadOptions options;
    options.staging_buffers = buffers;
    EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
        [&] { hfport::validate_upload_options(options); },
        {"staging_buffers", "1 to 64", "got " + std::to_string(buffers)}));
  }
  UploadOptions smallest;
  smallest.staging_bytes = 1;
  smallest.staging_buffers = 1;
  EXPECT_NO_THROW(hfport::validate_upload_options(smallest));
}

TEST(CudaUpload, RequestsAreCheckedBeforeTheDevice) {
  // These fail the same way with or without a device: nothing is allocated or copied first.
  const std::vector<UploadRequest> fine{{"w", f32_tensor({3}), DType::F32}};
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::upload_to_device(fine, kCpu); }, {"CUDA device", "got cpu"}));
  UploadOptions bad;
  bad.staging_buffers = 0;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::upload_to_device(fine, kCuda0, bad); }, {"staging_buffers"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::upload_to_device({{"undefined.w", Tensor(), DType::F32}}, kCuda0); },
      {"'undefined.w'", "undefined"}));

  std::vector<float> bytes(4, 1.0f);
  const Tensor on_device = hfport_test::labelled_cuda_tensor(bytes, {4});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::upload_to_device({{"gpu.w", on_device, DType::F32}}, kCuda0); },
      {"'gpu.w'", "cuda:0", "host tensors"}));

  const Tensor f8 = Tensor::zeros(DType::F8_E4M3, {2, 2});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::upload_to_device({{"f8.w", f8, DType::F32}}, kCuda0); },
      {"'f8.w'", "F8_E4M3", "F32", "on the host first"}));
  const Tensor ints = Tensor::zeros(DType::I32, {2});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::upload_to_device({{"ids", ints, DType::F16}}, kCuda0); },
      {"'ids'", "I32", "F16"}));
}

TEST(CudaUpload, DeviceCastsAndHostFallback) {
  EXPECT_TRUE(hfport::device_cast_supported(DType::I64, DType::I64));
  EXPECT_FALSE(hfport::device_cast_supported(DType::F8_E4M3, DType::F32));
  EXPECT_FALSE(hfport::device_cast_supported(DType::I32, DType::F32));
  EXPECT_EQ(hfport::device_cast_supported(DType::BF16, DType::F32), hfport::built_with_cuda());
  EXPECT_EQ(hfport::device_cast_supported(DType::F64, DType::F16), hfport::built_with_cuda());

  // An F8 tensor wanted as F32 is cast on the host and uploaded as F32.
  Tensor f8 = Tensor::empty(DType::F8_E4M3, {5});
  for (int i = 0; i < 5; ++i) f8.data_as<uint8_t>()[i] = static_cast<uint8_t>(0x30 + 7 * i);
  const UploadRequest widened = hfport::upload_request("f8.w", f8, DType::F32);
  EXPECT_EQ(widened.name, "f8.w");
  EXPECT_EQ(widened.source.dtype(), DType::F32);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(widened.source.data_as<float>()[i], hfport::f8_e4m3_to_f32(0x30 + 7 * i));
  }
  // BF16 -> F32 stays BF16 on the host when the device converts it.
  const Tensor bf16 = hfport_test::random_tensor(DType::BF16, {3});
  const UploadRequest kept = hfport::upload_request("b", bf16, DType::F32);
  EXPECT_EQ(kept.source.dtype(), hfport::built_with_cuda() ? DType::BF16 : DType::F32);
  EXPECT_THROW(hfport::upload_request("b", bf16, DType::I32), hfport::DTypeConversionError);
}

TEST(CudaUpload, NoDeviceIsADeviceErrorSayingWhy) {
  if (hfport::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible here";
  const std::vector<UploadRequest> fine{{"w", f32_tensor({3}), DType::F32}};
  const std::vector<std::string> words =
      hfport::built_with_cuda()
          ? std::vector<std::string>{"upload_to_device", "cuda:0", "no CUDA device is visible"}
          : std::vector<std::string>{"upload_to_device", "cuda:0", "compiled without"};
  try {
    hfport::upload_to_device(fine, kCuda0);
    ADD_FAILURE() << "no DeviceError";
  } catch (const hfport::DeviceError& e) {
    for (const auto& word : words) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  }
}

#ifdef HFPORT_WITH_CUDA

using hfport_test::CudaDeviceTest;

class CudaUploadRing : public CudaDeviceTest {};

// Random bytes for the dtypes random_tensor does not fill.
Tensor random_bytes(DType dtype, const Shape& shape) {
  Tensor t = Tensor::empty(dtype, shape);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < t.nbytes(); ++i) {
    t.data()[i] = static_cast<std::byte>(byte(hfport_test::kernel_rng()));
  }
  return t;
}

// A transposed view of a fresh [rows, cols] tensor: shape [cols, rows], strides [1, cols].
Tensor transposed(DType dtype, int64_t rows, int64_t cols) {
  const Tensor base = hfport_test::random_tensor(dtype, {rows, cols});
  return Tensor(base.storage(), 0, dtype, {cols, rows}, {1, cols});
}

// Odd byte sizes in a mix of dtypes, casts and layouts; several are larger than a 1 KiB buffer
// and one is larger than a ring of three.
std::vector<UploadRequest> mixed_requests() {
  std::vector<UploadRequest> requests{
      {"f32.37", f32_tensor({37}), DType::F32},
      {"bf16.513", hfport_test::random_tensor(DType::BF16, {513}), DType::BF16},
      {"u8.1", random_bytes(DType::U8, {1}), DType::U8},
      {"empty", Tensor::empty(DType::F32, {0, 3}), DType::F32},
      {"bf16->f32.1111", hfport_test::random_tensor(DType::BF16, {11, 101}), DType::F32},
      {"i64.77", random_bytes(DType::I64, {7, 11}), DType::I64},
      {"f32->bf16.999", f32_tensor({999}), DType::BF16},
      {"f16->f32.3x5x7", hfport_test::random_tensor(DType::F16, {3, 5, 7}), DType::F32},
      {"f64->f32.129", hfport_test::random_tensor(DType::F64, {129}), DType::F32},
      {"f32.transposed", transposed(DType::F32, 7, 131), DType::F32},
      {"bf16.transposed->f32", transposed(DType::BF16, 13, 9), DType::F32},
      {"f32.big", f32_tensor({1201, 3}), DType::F32},  // 14412 bytes: more than 3 x 1 KiB
      {"empty->bf16", Tensor::empty(DType::F32, {0}), DType::BF16},
  };
  for (int i = 0; i < 24; ++i) {  // many small ones, several to a chunk
    requests.push_back({"small." + std::to_string(i), f32_tensor({1 + 5 * i}), DType::F32});
  }
  return requests;
}

void expect_uploaded(const std::vector<UploadRequest>& requests, const std::vector<Tensor>& got) {
  ASSERT_EQ(got.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(requests[i].name);
    const Tensor expected = hfport::cast(requests[i].source, requests[i].dtype).contiguous();
    ASSERT_EQ(got[i].device(), kCuda0);
    EXPECT_EQ(got[i].dtype(), requests[i].dtype);
    EXPECT_EQ(got[i].shape(), requests[i].source.shape());
    EXPECT_TRUE(got[i].is_contiguous());
    const Tensor back = hfport::to_device(got[i], kCpu);  // on the work stream: the invariant
    ASSERT_EQ(back.nbytes(), expected.nbytes());
    if (expected.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(back.data(), expected.data(), expected.nbytes()), 0);
    }
  }
}

TEST_F(CudaUploadRing, OddChunkBoundariesEveryDTypeAndCast) {
  const std::vector<UploadRequest> requests = mixed_requests();
  for (int buffers : {1, 3, 5}) {
    for (bool one_allocation : {true, false}) {
      SCOPED_TRACE("buffers " + std::to_string(buffers) + ", one allocation " +
                   std::to_string(one_allocation));
      UploadOptions options;
      options.staging_bytes = 1000;  // rounded up to 1024
      options.staging_buffers = buffers;
      options.one_allocation = one_allocation;
      const std::vector<Tensor> got = hfport::upload_to_device(requests, kCuda0, options);
      expect_uploaded(requests, got);
      if (one_allocation) {
        for (const Tensor& t : got) EXPECT_EQ(t.storage(), got.front().storage());
      } else {
        EXPECT_NE(got[0].storage(), got[1].storage());
      }
    }
  }
}

TEST_F(CudaUploadRing, DefaultRingAndOneTensor) {
  const std::vector<UploadRequest> one{{"w", f32_tensor({257, 129}), DType::BF16}};
  expect_uploaded(one, hfport::upload_to_device(one, kCuda0));
  expect_uploaded(mixed_requests(), hfport::upload_to_device(mixed_requests(), kCuda0));
  EXPECT_TRUE(hfport::upload_to_device({}, kCuda0).empty());
}

TEST_F(CudaUploadRing, ProgressRisesToTheTotalOnTheCallingThread) {
  const std::vector<UploadRequest> requests = mixed_requests();
  uint64_t payload = 0;
  for (const auto& r : requests) payload += r.source.nbytes();
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  UploadOptions options;
  options.staging_bytes = 2048;
  options.staging_buffers = 2;
  options.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  expect_uploaded(requests, hfport::upload_to_device(requests, kCuda0, options));
  ASSERT_GE(calls.size(), 2u);
  for (size_t k = 0; k < calls.size(); ++k) {
    EXPECT_EQ(calls[k].second, payload);
    if (k > 0) EXPECT_GE(calls[k].first, calls[k - 1].first);
  }
  EXPECT_EQ(calls.back().first, payload);
}

TEST_F(CudaUploadRing, AFailureMidwayPropagatesAndLeavesTheNextUploadWorking) {
  const std::vector<UploadRequest> requests = mixed_requests();
  UploadOptions options;
  options.staging_bytes = 512;
  options.staging_buffers = 4;
  int calls = 0;
  options.progress = [&](uint64_t, uint64_t) {
    if (++calls == 2) throw std::runtime_error("stopped by the test");
  };
  try {
    hfport::upload_to_device(requests, kCuda0, options);
    ADD_FAILURE() << "the progress callback's exception did not propagate";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "stopped by the test");
  }
  ASSERT_CUDA(cudaGetLastError());
  options.progress = nullptr;
  expect_uploaded(requests, hfport::upload_to_device(requests, kCuda0, options));
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
