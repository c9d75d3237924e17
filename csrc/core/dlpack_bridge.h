// Tensor <-> DLPack, without Python. The capsule protocol around it lives in csrc/python.
//
// We build against the DLPack header Debian ships (0.6), so tensors cross as the legacy
// DLManagedTensor, which every consumer (torch, numpy, jax, cupy) accepts. Dtype codes that 0.6
// lacks are the DLPack 1.x values torch uses: kDLBool = 6, float8 e4m3fn = 10, e5m2 = 12.
#pragma once

#include <dlpack/dlpack.h>

#include "core/tensor.h"

namespace hfport {

// A new DLManagedTensor viewing `tensor`; it holds the storage alive until its deleter runs.
// `data` points at the first element (byte_offset 0). Throws DLPackError for a non-CPU tensor
// or one with negative strides.
DLManagedTensor* to_dlpack(const Tensor& tensor);

// Takes ownership of `managed`: the returned tensor views its memory without copying and calls
// its deleter when the last view is gone. Throws DLPackError (after calling the deleter) for a
// dtype, lane count or device hfport does not handle.
Tensor from_dlpack(DLManagedTensor* managed);

}  // namespace hfport
