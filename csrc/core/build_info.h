// What this build of hfport contains, and what the machine it runs on offers.
#pragma once

#include <string>

namespace hfport {

bool built_with_cuda();      // CUDA kernels compiled in (nvcc was found at build time)
bool built_with_cublaslt();  // cuBLASLt linked
// CUDA devices visible now; 0 in a CPU-only build or when no driver or device is present.
int cuda_device_count();
std::string version();

}  // namespace hfport
