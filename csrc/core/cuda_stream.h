// hfport's CUDA stream, and the handshake that hands data made on it to a consumer's stream.
//
// Which stream is hfport's. Every hfport operation on a CUDA device that is not given a stream runs
// on that device's legacy default stream (cudaStreamLegacy, the "stream 0" of the runtime API). It
// is torch's and cupy's default stream too, so in the common case, where nobody has switched
// streams, producer and consumer are one stream and a DLPack exchange needs no synchronisation at
// all. It also needs no state: no stream to create, own and destroy per device, nothing global for
// the library to hold. The cost is that the legacy stream serialises with every blocking stream on
// the device; the pinned, overlapped checkpoint upload (issue 6) may move to its own non-blocking
// streams, and then only this file changes.
//
// The invariant the rest of hfport keeps: the data of a CUDA tensor hfport hands out is ready, in
// order, on the work stream of its device. to_device copies on it (or on a stream the caller names,
// who then owns the ordering), and hfport.from_dlpack asks the producer to make its data ready on
// it (`__dlpack__(stream=1)`).
#pragma once

#include "core/storage.h"

namespace hfport {

// hfport's work stream as a cudaStream_t cast to void*: cudaStreamLegacy, which names the legacy
// default stream of whichever device is current. Valid in every build (it is a constant).
void* cuda_work_stream();

// Makes `consumer` (a cudaStream_t of `device`; nullptr or cudaStreamLegacy is the work stream
// itself) wait, on the GPU, for all work issued so far on the work stream of `device`: an event is
// recorded there and cudaStreamWaitEvent queues the wait. Neither the host nor the rest of the
// device blocks. Nothing happens when consumer is the work stream. DeviceError when `device` cannot
// be used (no CUDA build, no device), CudaError when a call fails.
void cuda_stream_wait_for_work(const Device& device, void* consumer);

}  // namespace hfport
