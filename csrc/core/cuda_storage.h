// CudaStorage: bytes on one CUDA device, from cudaMalloc, freed with cudaFree when the last tensor
// (or DLPack capsule) viewing them is gone.
//
// No caching allocator yet: cudaFree waits for the device to go idle, which is slow in a loop of
// small tensors but makes a free safe whatever stream a DLPack consumer last used the bytes on.
// The class exists in every build; without CUDA its constructor throws DeviceError.
#pragma once

#include <cstddef>

#include "core/storage.h"

namespace hfport {

class CudaStorage final : public Storage {
 public:
  // Uninitialised bytes on cuda:`device_index`. DeviceError when the build has no CUDA or the
  // device is not there, CudaError when cudaMalloc fails (out of memory, say). Zero bytes
  // allocate nothing (data() is null).
  CudaStorage(size_t size, int device_index);
  ~CudaStorage() override;
  CudaStorage(const CudaStorage&) = delete;
  CudaStorage& operator=(const CudaStorage&) = delete;

  std::byte* data() const override { return data_; }
  size_t size() const override { return size_; }
  Device device() const override { return {DeviceType::CUDA, device_index_}; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  int device_index_ = 0;
};

}  // namespace hfport
