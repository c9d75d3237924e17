#include "core/cuda_stream.h"

#include <cstdint>

#include "core/device.h"

#ifdef HFPORT_WITH_CUDA
#include "core/cuda_call.h"
#endif

namespace hfport {

namespace {

// cudaStreamLegacy and cudaStreamPerThread are the constants 0x1 and 0x2 in driver_types.h; a
// build without CUDA has no header to take them from, and the values are part of the CUDA ABI.
constexpr uintptr_t kLegacyStream = 0x1;

bool is_work_stream(void* stream) {
  const auto value = reinterpret_cast<uintptr_t>(stream);
  return value == 0 || value == kLegacyStream;  // 0 is legacy too: no per-thread flag here
}

}  // namespace

void* cuda_work_stream() { return reinterpret_cast<void*>(kLegacyStream); }

void cuda_stream_wait_for_work(const Device& device, void* consumer) {
  if (device.type != DeviceType::CUDA || is_work_stream(consumer)) return;
  require_usable_device(device, "making a stream wait for hfport's work");
#ifdef HFPORT_WITH_CUDA
  cuda_call::DeviceScope scope(device.index);
  cudaEvent_t done = nullptr;
  HFPORT_CORE_CUDA(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  try {
    HFPORT_CORE_CUDA(cudaEventRecord(done, cudaStreamLegacy));
    HFPORT_CORE_CUDA(cudaStreamWaitEvent(static_cast<cudaStream_t>(consumer), done, 0));
  } catch (...) {
    cudaEventDestroy(done);
    throw;
  }
  // Destroying an event with a wait still queued on it is allowed: the runtime keeps it until the
  // wait has been satisfied.
  HFPORT_CORE_CUDA(cudaEventDestroy(done));
#endif
}

}  // namespace hfport
