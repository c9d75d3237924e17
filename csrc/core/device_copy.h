// Moving tensors between the host and CUDA devices: host -> device, device -> host, device ->
// device, one cudaMemcpyAsync each.
//
// Layout: the result is always contiguous. A strided host source is first gathered into a
// contiguous host copy; a strided CUDA source is refused (there is no device gather yet).
//
// Streams: `stream` is a cudaStream_t as void*; nullptr means hfport's work stream
// (cuda_stream.h). The source must be ready on that stream and the result is ready on it, in
// order, when the call returns; a caller naming another stream owns the ordering with hfport's.
// A copy to the host waits for that stream (never the whole device) before returning, since host
// code may read the result at once. A host source in pinned memory is also waited for, since the
// copy reads it after the call returns and nothing else keeps it alive; pageable memory, which
// the runtime stages before returning, is not. (Pinned staging buffers, issue 6's loader step,
// will make uploads asynchronous.)
#pragma once

#include "core/tensor.h"

namespace hfport {

// `src` itself when it is already on `device`, otherwise a copy there.
Tensor to_device(const Tensor& src, const Device& device, void* stream = nullptr);

// Always a new contiguous tensor on `device`, even when `src` is already there.
Tensor copy_to_device(const Tensor& src, const Device& device, void* stream = nullptr);

}  // namespace hfport
