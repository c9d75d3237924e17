// Every CUDA runtime call and every launch goes through HFPORT_CUDA_CHECK, which throws
// hfport::CudaError naming the call, the file:line and CUDA's own description.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

#define HFPORT_CUDA_CHECK(call)                                                           \
  do {                                                                                    \
    const cudaError_t hfport_status = (call);                                             \
    if (hfport_status != cudaSuccess) {                                                   \
      throw ::hfport::CudaError(std::string(#call) + " failed at " + __FILE__ + ":" +     \
                                std::to_string(__LINE__) + ": " +                         \
                                cudaGetErrorString(hfport_status));                       \
    }                                                                                     \
  } while (0)
