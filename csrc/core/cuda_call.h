// The CUDA runtime as csrc/core calls it: every call checked (CudaError naming the call and CUDA's
// description), and the current device switched for one scope and restored after it.
//
// Private to csrc/core's .cpp files and core/cuda's .cu files, and only inside #ifdef
// HFPORT_WITH_CUDA: the public headers stay free of CUDA's, so a C++ user of a CUDA build compiles
// against them with any compiler.
#pragma once

#ifndef HFPORT_WITH_CUDA
#error "core/cuda_call.h is only for builds with CUDA"
#endif

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace hfport::cuda_call {

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // a non-sticky error would otherwise be reported again by the next call
    throw CudaError(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")");
  }
}

// Makes `index` the current device until the scope ends. Allocations, events and the legacy
// default stream all belong to the current device, so every core call that touches one device
// runs inside one of these. The caller has checked the index (require_usable_device).
class DeviceScope {
 public:
  explicit DeviceScope(int index) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != index) check(cudaSetDevice(index), "cudaSetDevice");
  }
  ~DeviceScope() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace hfport::cuda_call

#define HFPORT_CORE_CUDA(call) ::hfport::cuda_call::check((call), #call)
