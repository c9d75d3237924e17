#include "core/build_info.h"

#ifdef HFPORT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace hfport {

bool built_with_cuda() {
#ifdef HFPORT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool built_with_cublaslt() {
#ifdef HFPORT_WITH_CUBLASLT
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef HFPORT_WITH_CUDA
  int count = 0;
  // No driver or no device is an answer here, not an error.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

std::string version() { return HFPORT_VERSION; }  // CMakeLists.txt project(... VERSION)

}  // namespace hfport
