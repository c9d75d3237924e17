// Many host tensors to one CUDA device in one call, through a ring of pinned staging buffers: the
// last step of a load to the GPU (mapping/loader.h, core/load_tensors.h).
//
// Pipeline. The sources are laid end to end in one byte stream, each starting on a 256-byte
// boundary, and the stream is cut into chunks the size of one staging buffer. Staging buffer b
// (page-locked, cudaHostAlloc) carries chunks b, b + n, b + 2n, ... of the n buffers, and has its
// own non-blocking stream and event. A host thread (core/parallel.h; each thread owns one or more
// buffers) waits until b's last copies have left it, memcpys b's next chunk out of the sources
// (the mapped file's pages, faults included), queues one cudaMemcpyAsync per tensor piece in it on
// b's stream, records b's event, and goes on to its next buffer. So the host's memcpy into some
// buffers runs while the copy engine drains others, and a big tensor simply spans several chunks.
// A copy from pageable memory (what a plain `.to("cuda")` of a mapped tensor does) is staged by
// the driver through its own pinned buffers too, but on the calling thread, one tensor at a time;
// this is the same idea with the staging spread over threads and overlapped with the copies.
//
// Casts run on the device after upload. A piece of a tensor wanted in another dtype is copied to
// b's device scratch (as large as a staging buffer, allocated on b's stream the first time b
// carries such a piece) and cuda::convert writes it, converted, into its place in the result, on
// b's stream after the copy. A chunk boundary always falls between elements, since every tensor
// starts 256-aligned in the stream and chunks are a multiple of 256 bytes. Converting on the device
// keeps PCIe traffic at the source's size (half of f32 for a bf16 checkpoint read as f32).
//
// Strided sources (a transposed or split view from the loader) are gathered on the host first
// (Tensor::contiguous, on several threads, one tensor per thread): one extra host copy of just
// those tensors. Mapped checkpoint tensors, renames and fused (concatenated) tensors are contiguous
// and are read straight from where they are.
//
// Results. With one_allocation (the default) one cudaMalloc holds every result, each a
// contiguous view starting 256-aligned in it: a few hundred cudaMallocs (and, later, cudaFrees,
// each of which waits for the device) cost more than the copies of the small tensors. The price:
// the memory returns to the device only when the last of those views is gone, so dropping one
// parameter of a loaded model frees nothing. A model's state is loaded and dropped whole, so that
// is the default; one_allocation = false gives every tensor its own CudaStorage.
//
// Ordering. When the call returns, the sources are no longer read (the host may unmap them), the
// staging buffers are freed, and the results are ready in order on hfport's work stream
// (core/cuda_stream.h): the work stream waits, on the GPU, for an event recorded after the last
// copy and conversion of each upload stream. The host waits for each staging buffer's last copy
// before freeing it; conversions queued behind may still be running when the call returns, and
// the work stream's wait covers them.
//
// Failure. Every pinned buffer, device scratch, stream and event is released on every path. After
// a failure midway (out of device memory, a progress callback that throws) the upload streams are
// synchronised first, so nothing is freed while a copy still reads or writes it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hfport {

struct UploadRequest {
  std::string name;  // names the tensor in error messages only
  Tensor source;     // on the host: a mapped view or a host allocation, any strides
  DType dtype;       // wanted on the device; another dtype than the source's is converted there
};

struct UploadOptions {
  int64_t staging_bytes = int64_t{32} << 20;  // each pinned buffer; rounded up to 256 bytes
  // Pinned buffers, each with its own stream; also the most host threads filling them. A load
  // smaller than the ring gets smaller buffers (the bytes split evenly over them, 256-aligned).
  int staging_buffers = 8;
  bool one_allocation = true;  // one cudaMalloc for all results; see the file comment
  // Called on the calling thread as chunks are staged: (bytes staged, bytes in all sources).
  // An exception it throws stops the upload and propagates.
  std::function<void(uint64_t, uint64_t)> progress;
};

// ArgumentError naming the option unless staging_bytes is 1 .. 2^34 (16 GiB) and staging_buffers
// is 1 .. 64. upload_to_device calls it first; a loader calls it before any other work.
void validate_upload_options(const UploadOptions& options);

// Whether upload_to_device converts `from` to `to` on the device: the same dtype (nothing to
// convert), or both F32, F16, BF16 or F64 (core/cuda/convert.h). Always false between two
// dtypes in a build without CUDA, where nothing is uploaded.
bool device_cast_supported(DType from, DType to);

// The request that puts `source` on the device as `dtype`: converted there when
// device_cast_supported says so, else cast on the host first (core/cast.h; DTypeConversionError
// for a target it does not make) and uploaded as it then is.
UploadRequest upload_request(std::string name, const Tensor& source, DType dtype);

// One contiguous tensor on `device` per request, in request order, of the request's dtype and the
// source's shape. Checked before any work, in this order: the options (ArgumentError); `device`
// is a CUDA device (ArgumentError); every source is defined (ArgumentError) and on the host
// (DeviceError), every cast is one the device does (ArgumentError), each naming the tensor; the
// device is usable (DeviceError saying why not). CudaError when a CUDA call fails.
std::vector<Tensor> upload_to_device(const std::vector<UploadRequest>& requests,
                                     const Device& device, const UploadOptions& options = {});

}  // namespace hfport
