// What the CUDA tests share. In every build: tensors labelled as CUDA memory over host bytes (for
// the checks that only read where a tensor lives, runnable without a GPU). In builds with CUDA
// (HFPORT_WITH_CUDA): a fixture that skips (and says why) when no device is visible, an assertion
// on CUDA runtime calls, contiguous copies between the host and device 0, and raw device copies
// that keep a host tensor's strides for the kernel-level tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace hfport_test {

// Host floats labelled as memory of CUDA device `device_index` (contiguous when `strides` is
// empty). Never dereferenced as device memory; `host` must outlive the tensor.
inline hfport::Tensor labelled_cuda_tensor(std::vector<float>& host, hfport::Shape shape,
                                           hfport::Shape strides = {}, int device_index = 0) {
  if (strides.empty()) strides = hfport::contiguous_strides(shape);
  auto storage = std::make_shared<hfport::ExternalStorage>(
      reinterpret_cast<std::byte*>(host.data()), host.size() * sizeof(float),
      hfport::Device{hfport::DeviceType::CUDA, device_index}, nullptr);
  return hfport::Tensor(storage, 0, hfport::DType::F32, std::move(shape), std::move(strides));
}

}  // namespace hfport_test

#ifdef HFPORT_WITH_CUDA

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include "core/build_info.h"
#include "core/device_copy.h"
#include "core/dtype.h"
#include "kernels/cuda/cuda_check.h"

#define ASSERT_CUDA(call)                                                                  \
  do {                                                                                     \
    const cudaError_t status_ = (call);                                                    \
    ASSERT_EQ(status_, cudaSuccess) << #call << ": " << cudaGetErrorString(status_);       \
  } while (0)

namespace hfport_test {

class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (hfport::cuda_device_count() == 0) {
      GTEST_SKIP() << "no CUDA device visible (cuda_device_count() == 0): compiled in, but this "
                      "machine cannot run it";
    }
  }
};

// A contiguous copy of `host` (any strides) on device 0, and a device tensor's contiguous copy back
// on the host.
inline hfport::Tensor upload(const hfport::Tensor& host) {
  return hfport::to_device(host.contiguous(), hfport::Device{hfport::DeviceType::CUDA, 0});
}
inline hfport::Tensor download(const hfport::Tensor& device) {
  return hfport::to_device(device, hfport::Device{});
}

// Elements from the first one a strided view reaches to the last (non-negative strides).
inline int64_t span_elements(const hfport::Tensor& t) {
  if (t.numel() == 0) return 0;
  int64_t last = 0;
  for (size_t i = 0; i < t.shape().size(); ++i) last += (t.shape()[i] - 1) * t.strides()[i];
  return last + 1;
}

// A raw device copy of a host tensor with the same shape and strides (the span the strides reach
// is copied, so a transposed view stays transposed), for filling a kernel's Params by hand; freed
// on scope exit.
class DeviceTensor {
 public:
  explicit DeviceTensor(const hfport::Tensor& host)
      : dtype_(host.dtype()), shape_(host.shape()), strides_(host.strides()) {
    const size_t bytes = static_cast<size_t>(span_elements(host)) * hfport::dtype_size(dtype_);
    HFPORT_CUDA_CHECK(cudaMalloc(&ptr_, bytes > 0 ? bytes : 1));
    if (bytes > 0) HFPORT_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes, cudaMemcpyHostToDevice));
    bytes_ = bytes;
  }
  ~DeviceTensor() { cudaFree(ptr_); }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  int64_t stride(size_t dim) const { return strides_[dim]; }

  // The device contents as a contiguous host tensor of the shape.
  hfport::Tensor download() const {
    hfport::Tensor span = hfport::Tensor::empty(
        dtype_, {static_cast<int64_t>(bytes_ / hfport::dtype_size(dtype_))});
    if (bytes_ > 0) HFPORT_CUDA_CHECK(cudaMemcpy(span.data(), ptr_, bytes_, cudaMemcpyDeviceToHost));
    return hfport::Tensor(span.storage(), 0, dtype_, shape_, strides_).contiguous();
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  hfport::DType dtype_;
  hfport::Shape shape_, strides_;
};

}  // namespace hfport_test

#endif  // HFPORT_WITH_CUDA
