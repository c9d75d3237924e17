// Tensor <-> DLPack, without Python. The capsule protocol around it lives in csrc/python.
//
// Both managed structs of core/dlpack.h are made and taken: the legacy DLManagedTensor, which
// every consumer accepts, and DLPack 1.x's DLManagedTensorVersioned, which also says whether the
// consumer may write (READ_ONLY) and whether the export is a copy (IS_COPIED). Dtypes use the 1.x
// codes (kDLBool, kDLFloat8_e4m3fn, kDLFloat8_e5m2 for the types 0.6 lacks) in both structs, as
// torch does.
//
// Writability: an export is READ_ONLY exactly when its storage is (Storage::read_only): memory a
// producer lent us read-only. A mapped checkpoint is not read-only: it is mapped MAP_PRIVATE
// with PROT_WRITE, so a consumer's write lands in private copy-on-write pages and never in the
// file (docs/decisions.md, "Mapped checkpoints are writable copy-on-write").
#pragma once

#include "core/dlpack.h"

#include <cstdint>
#include <optional>

#include "core/tensor.h"

namespace hfport {

// A new DLManagedTensor viewing `tensor`; it holds the storage alive until its deleter runs.
// `data` points at the first element (byte_offset 0); the device is kDLCPU, or kDLCUDA with the
// device index. Throws DLPackError for a tensor with negative strides.
DLManagedTensor* to_dlpack(const Tensor& tensor);

// The same as a DLPack 1.x struct (version 1.1). Its flags are READ_ONLY when the storage is
// read-only, plus `extra_flags` (the caller passes IS_COPIED when `tensor` is a copy made for this
// export).
DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& tensor, uint64_t extra_flags = 0);

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

// The same for a DLPack 1.x struct. A major version other than 1 is refused (after calling the
// deleter, which every version keeps in the same place). A READ_ONLY struct becomes a tensor
// whose storage is read-only, so that hfport exports it read-only again.
Tensor from_dlpack(DLManagedTensorVersioned* managed);

}  // namespace hfport
