// Tensor <-> DLPack, without Python. The capsule protocol around it lives in csrc/python.
//
// We build against the DLPack header Debian ships (0.6), so tensors cross as the legacy
// DLManagedTensor, which every consumer (torch, numpy, jax, cupy) accepts. Dtype codes that 0.6
// lacks are the DLPack 1.x values torch uses: kDLBool = 6, float8 e4m3fn = 10, e5m2 = 12.
#pragma once

#include <dlpack/dlpack.h>

#include <cstdint>
#include <optional>

#include "core/tensor.h"

namespace hfport {

// A new DLManagedTensor viewing `tensor`; it holds the storage alive until its deleter runs.
// `data` points at the first element (byte_offset 0); the device is kDLCPU, or kDLCUDA with the
// device index. Throws DLPackError for a tensor with negative strides.
DLManagedTensor* to_dlpack(const Tensor& tensor);

// The `stream` argument of the DLPack Python protocol (`__dlpack__(stream=...)`), applied before a
// CUDA tensor is handed to a consumer: nullopt (Python's None) and 1 name the legacy default
// stream, 2 the per-thread default stream, -1 asks for no synchronisation, and any other positive
// value is the consumer's cudaStream_t. The consumer's stream is made to wait for hfport's work
// stream (cuda_stream.h), on the GPU. 0 and other negative values are refused with DLPackError,
// as the spec disallows them for CUDA. For a CPU tensor there is nothing to order and the
// argument is ignored.
void prepare_dlpack_consumer_stream(const Tensor& tensor, std::optional<int64_t> stream);

// Takes ownership of `managed`: the returned tensor views its memory without copying and calls
// its deleter when the last view is gone. Throws DLPackError (after calling the deleter) for a
// dtype, lane count or device hfport does not handle.
Tensor from_dlpack(DLManagedTensor* managed);

}  // namespace hfport
