// What every CUDA test shares: a fixture that skips (and says why) when no device is visible, and
// an assertion on CUDA runtime calls. Only for builds with CUDA (HFPORT_WITH_CUDA).
#pragma once

#ifdef HFPORT_WITH_CUDA

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include "core/build_info.h"

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

}  // namespace hfport_test

#endif  // HFPORT_WITH_CUDA
