#include "core/cuda_storage.h"

#include <string>

#include "core/device.h"
#include "core/error.h"

#ifdef HFPORT_WITH_CUDA
#include "core/cuda_call.h"
#endif

namespace hfport {

CudaStorage::CudaStorage(size_t size, int device_index) : size_(size), device_index_(device_index) {
  require_usable_device({DeviceType::CUDA, device_index}, "allocating " + std::to_string(size) +
                                                              " bytes of CUDA memory");
#ifdef HFPORT_WITH_CUDA
  if (size == 0) return;
  cuda_call::DeviceScope scope(device_index);
  void* raw = nullptr;
  const cudaError_t status = cudaMalloc(&raw, size);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw CudaError("cudaMalloc of " + std::to_string(size) + " bytes on cuda:" +
                    std::to_string(device_index) + " failed: " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")");
  }
  data_ = static_cast<std::byte*>(raw);
#endif
}

CudaStorage::~CudaStorage() {
#ifdef HFPORT_WITH_CUDA
  if (data_ == nullptr) return;
  // A destructor cannot throw; a failing cudaFree (the context already torn down at process exit)
  // leaves nothing to free anyway.
  int previous = device_index_;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_index_ &&
                        cudaSetDevice(device_index_) == cudaSuccess;
  if (cudaFree(data_) != cudaSuccess) cudaGetLastError();
  if (switched) cudaSetDevice(previous);
#endif
}

}  // namespace hfport
