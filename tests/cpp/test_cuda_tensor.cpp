// CUDA tensors: device names, the DeviceError a build or machine without CUDA gives, DLPack
// structs for CUDA tensors in both directions and the DLPack `stream` codes (these run everywhere:
// a CUDA tensor can be described without a GPU), and, where a device is visible, host -> device ->
// host round trips of every dtype at odd sizes, strided sources, device copies and the stream
// handshake. Without a visible device those tests skip and say why.
#include <gtest/gtest.h>

#include "core/dlpack.h"

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/cuda_storage.h"
#include "core/cuda_stream.h"
#include "core/device.h"
#include "core/device_copy.h"
#include "core/dlpack_bridge.h"
#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"

#include "cuda_test_support.h"

#ifdef HFPORT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace {

using hfport::Device;
using hfport::DeviceType;
using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::labelled_cuda_tensor;
using hfport_test::throws_exactly;

const Device kCpu{DeviceType::CPU, 0};
const Device kCuda0{DeviceType::CUDA, 0};

TEST(CudaDevice, NamesParseAndPrint) {
  EXPECT_EQ(hfport::parse_device("cpu"), kCpu);
  EXPECT_EQ(hfport::parse_device("cuda"), kCuda0);
  EXPECT_EQ(hfport::parse_device("cuda:3"), (Device{DeviceType::CUDA, 3}));
  EXPECT_EQ(hfport::device_name(Device{DeviceType::CUDA, 3}), "cuda:3");
  EXPECT_EQ(hfport::device_name(kCpu), "cpu");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:1x", "CUDA", " cpu", "cuda:99999999999"}) {
    EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { hfport::parse_device(bad); },
                                                    {"'" + std::string(bad) + "'", "cuda:N"}));
  }
}

// What a user sees where CUDA cannot run: the build lacks it, or the machine has no device.
std::vector<std::string> expected_unavailable_words() {
  if (!hfport::built_with_cuda()) return {"cuda:0", "compiled without", "HFPORT_CUDA=OFF"};
  return {"cuda:0", "no CUDA device is visible"};
}

TEST(CudaDevice, UnavailableDeviceIsADeviceErrorSayingWhy) {
  if (hfport::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible here";
  const Tensor host = Tensor::zeros(DType::F32, {3});
  const auto words = expected_unavailable_words();
  auto with = [&](std::string first) {
    std::vector<std::string> all{std::move(first)};
    all.insert(all.end(), words.begin(), words.end());
    return all;
  };
  auto check = [](auto fn, const std::vector<std::string>& needles) {
    try {
      fn();
      ADD_FAILURE() << "did not throw";
    } catch (const hfport::DeviceError& e) {
      for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message lacks \"" << n << "\": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw something else: " << e.what();
    }
  };
  check([&] { hfport::to_device(host, kCuda0); }, with("to_device"));
  check([&] { Tensor::empty(DType::F16, {2, 2}, kCuda0); }, with("allocating 8 bytes"));
  check([&] { hfport::CudaStorage(16, 0); }, with("CUDA memory"));
  std::vector<float> bytes(4);
  const Tensor labelled = labelled_cuda_tensor(bytes, {4}, {1});
  check([&] { hfport::to_device(labelled, kCpu); }, with("to_device"));
  // A consumer stream other than hfport's own needs the runtime.
  check([&] { hfport::prepare_dlpack_consumer_stream(labelled, 0x1234); }, words);
}

TEST(CudaDevice, SameDeviceIsNoCopyAndHostToHostCopies) {
  const Tensor host = Tensor::zeros(DType::I32, {2, 3});
  const Tensor same = hfport::to_device(host, kCpu);
  EXPECT_EQ(same.data(), host.data());
  const Tensor copy = hfport::copy_to_device(host, kCpu);
  EXPECT_NE(copy.data(), host.data());
  EXPECT_EQ(copy.shape(), host.shape());
  std::vector<float> bytes(6);
  const Tensor labelled = labelled_cuda_tensor(bytes, {2, 3}, {3, 1}, 1);
  EXPECT_EQ(hfport::to_device(labelled, Device{DeviceType::CUDA, 1}).data(), labelled.data());
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([] { hfport::to_device(Tensor(), kCpu); },
                                                    {"undefined"}));
}

TEST(CudaDLPack, ExportsACudaTensorWithItsDeviceIndex) {
  std::vector<float> bytes(12);
  const Tensor t = labelled_cuda_tensor(bytes, {3, 2}, {1, 4}, 1);
  DLManagedTensor* managed = hfport::to_dlpack(t.slice(0, 1, 3));
  const DLTensor& dl = managed->dl_tensor;
  EXPECT_EQ(dl.device.device_type, kDLCUDA);
  EXPECT_EQ(dl.device.device_id, 1);
  EXPECT_EQ(dl.data, static_cast<void*>(bytes.data() + 1));
  EXPECT_EQ(dl.byte_offset, 0u);
  ASSERT_EQ(dl.ndim, 2);
  EXPECT_EQ(dl.shape[0], 2);
  EXPECT_EQ(dl.strides[1], 4);

  // And back: a kDLCUDA struct becomes a CUDA tensor over the same address.
  const Tensor back = hfport::from_dlpack(managed);
  EXPECT_EQ(back.device(), (Device{DeviceType::CUDA, 1}));
  EXPECT_EQ(back.data(), reinterpret_cast<std::byte*>(bytes.data() + 1));
  EXPECT_EQ(back.strides(), (Shape{1, 4}));
}

TEST(CudaDLPack, ImportedCudaMemoryIsRefusedByHostOperations) {
  std::vector<float> bytes(4);
  const Tensor t = labelled_cuda_tensor(bytes, {2, 2}, {2, 1});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { t.clone(); }, {"CUDA"}));
}

TEST(CudaDLPack, StreamCodesFollowTheSpec) {
  std::vector<float> bytes(4);
  const Tensor cuda = labelled_cuda_tensor(bytes, {4}, {1});
  // None and 1 name hfport's own stream, -1 asks for nothing: no runtime call is needed.
  EXPECT_NO_THROW(hfport::prepare_dlpack_consumer_stream(cuda, std::nullopt));
  EXPECT_NO_THROW(hfport::prepare_dlpack_consumer_stream(cuda, 1));
  EXPECT_NO_THROW(hfport::prepare_dlpack_consumer_stream(cuda, -1));
  for (int64_t bad : {0, -2, -7}) {
    EXPECT_TRUE(throws_exactly<hfport::DLPackError>(
        [&] { hfport::prepare_dlpack_consumer_stream(cuda, bad); },
        {"stream=" + std::to_string(bad), "disallows", "legacy default"}));
  }
  // For a host tensor the argument means nothing.
  EXPECT_NO_THROW(hfport::prepare_dlpack_consumer_stream(Tensor::zeros(DType::F32, {2}), 0));
  EXPECT_EQ(hfport::cuda_work_stream(), reinterpret_cast<void*>(uintptr_t{1}));
}

#ifdef HFPORT_WITH_CUDA

class CudaTensor : public hfport_test::CudaDeviceTest {};

Tensor random_host(DType dtype, const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::empty(dtype, shape);
  for (size_t i = 0; i < t.nbytes(); ++i) t.data()[i] = static_cast<std::byte>(rng());
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && (a.nbytes() == 0 || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

TEST_F(CudaTensor, EveryDTypeRoundTripsAtOddSizes) {
  std::mt19937 rng(61);
  for (int code = 0; code < hfport::kDTypeCount; ++code) {
    const auto dtype = static_cast<DType>(code);
    for (const Shape& shape : {Shape{}, Shape{0}, Shape{1}, Shape{7}, Shape{3, 5, 17}, Shape{4099}}) {
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + hfport::shape_to_string(shape));
      const Tensor host = random_host(dtype, shape, rng);
      const Tensor dev = hfport::to_device(host, kCuda0);
      EXPECT_EQ(dev.device(), kCuda0);
      EXPECT_EQ(dev.shape(), shape);
      EXPECT_EQ(dev.dtype(), dtype);
      if (dev.nbytes() > 0) {
        cudaPointerAttributes attributes{};
        ASSERT_CUDA(cudaPointerGetAttributes(&attributes, dev.data()));
        EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
        EXPECT_EQ(attributes.device, 0);
      }
      const Tensor back = hfport::to_device(dev, kCpu);
      EXPECT_EQ(back.device(), kCpu);
      EXPECT_TRUE(same_bytes(back, host));
    }
  }
}

TEST_F(CudaTensor, StridedHostSourceUploadsContiguous) {
  std::mt19937 rng(62);
  const Tensor base = random_host(DType::BF16, {5, 9}, rng);
  const Tensor view = base.slice(1, 1, 8, 3).slice(0, 1, 5);  // [4, 3], strides [9, 3]
  ASSERT_FALSE(view.is_contiguous());
  const Tensor dev = hfport::to_device(view, kCuda0);
  EXPECT_TRUE(dev.is_contiguous());
  EXPECT_TRUE(same_bytes(hfport::to_device(dev, kCpu), view.clone()));
}

TEST_F(CudaTensor, DeviceCopiesAreFreshAndStridedDeviceSourcesAreRefused) {
  std::mt19937 rng(63);
  const Tensor host = random_host(DType::F32, {6, 10}, rng);
  const Tensor dev = hfport::to_device(host, kCuda0);
  const Tensor copy = hfport::copy_to_device(dev, kCuda0);
  EXPECT_NE(copy.data(), dev.data());
  EXPECT_TRUE(same_bytes(hfport::to_device(copy, kCpu), host));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::to_device(dev.slice(1, 0, 10, 2), kCpu); }, {"strides [10, 2]", "contiguous"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::to_device(host, Device{DeviceType::CUDA, hfport::cuda_device_count()}); },
      {"does not exist"}));
  // Host operations keep refusing real device memory.
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { dev.clone(); }, {"CUDA"}));
}

TEST_F(CudaTensor, EmptyOnDeviceAndDLPackExportKeepTheAllocation) {
  const Tensor t = Tensor::empty(DType::F16, {3, 7}, kCuda0);
  EXPECT_EQ(t.device(), kCuda0);
  EXPECT_NE(dynamic_cast<hfport::CudaStorage*>(t.storage().get()), nullptr);
  DLManagedTensor* managed = hfport::to_dlpack(t);
  EXPECT_EQ(managed->dl_tensor.device.device_type, kDLCUDA);
  EXPECT_EQ(managed->dl_tensor.device.device_id, 0);
  EXPECT_EQ(managed->dl_tensor.data, static_cast<void*>(t.data()));
  const Tensor imported = hfport::from_dlpack(managed);
  EXPECT_EQ(imported.device(), kCuda0);
  EXPECT_EQ(imported.data(), t.data());
}

// The handshake: a consumer stream that must wait for a copy still queued on hfport's stream.
// A kernel-free way to keep the work stream busy: a big host -> device copy first, then a device
// -> device copy of the result, then the consumer reads on its own (non-blocking) stream.
TEST_F(CudaTensor, ConsumerStreamWaitsForHfportsStream) {
  std::mt19937 rng(64);
  const Tensor host = random_host(DType::U8, {64 << 20}, rng);
  cudaStream_t consumer = nullptr;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking));
  const Tensor dev = hfport::to_device(host, kCuda0);
  const Tensor copy = hfport::copy_to_device(dev, kCuda0);  // queued on the work stream
  ASSERT_NO_THROW(hfport::prepare_dlpack_consumer_stream(copy, reinterpret_cast<intptr_t>(consumer)));
  std::vector<uint8_t> got(host.nbytes());
  ASSERT_CUDA(cudaMemcpyAsync(got.data(), copy.data(), got.size(), cudaMemcpyDeviceToHost, consumer));
  ASSERT_CUDA(cudaStreamSynchronize(consumer));
  EXPECT_EQ(std::memcmp(got.data(), host.data(), got.size()), 0);
  ASSERT_NO_THROW(hfport::prepare_dlpack_consumer_stream(copy, 2));  // per-thread default
  ASSERT_CUDA(cudaStreamDestroy(consumer));
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
