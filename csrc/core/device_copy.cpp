#include "core/device_copy.h"

#include "core/device.h"
#include "core/error.h"

#ifdef HFPORT_WITH_CUDA
#include "core/cuda_call.h"
#include "core/cuda_stream.h"
#endif

namespace hfport {

namespace {

std::string describe(const Tensor& t) {
  return "tensor of shape " + shape_to_string(t.shape()) + " (" + std::string(dtype_name(t.dtype())) + ") on " +
         device_name(t.device());
}

#ifdef HFPORT_WITH_CUDA

cudaStream_t stream_or_work(void* stream) {
  return stream == nullptr ? cudaStreamLegacy : static_cast<cudaStream_t>(stream);
}

bool is_pinned_host_memory(const void* ptr) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
    cudaGetLastError();  // memory the runtime never saw: plain pageable memory
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

Tensor upload(const Tensor& src, const Device& device, void* stream_arg) {
  const Tensor host = src.contiguous();
  Tensor out = Tensor::empty(host.dtype(), host.shape(), device);
  if (host.nbytes() == 0) return out;
  cuda_call::DeviceScope scope(device.index);
  const cudaStream_t stream = stream_or_work(stream_arg);
  HFPORT_CORE_CUDA(cudaMemcpyAsync(out.data(), host.data(), host.nbytes(), cudaMemcpyHostToDevice,
                                   stream));
  if (is_pinned_host_memory(host.data())) HFPORT_CORE_CUDA(cudaStreamSynchronize(stream));
  return out;
}

Tensor download(const Tensor& src, void* stream_arg) {
  Tensor out = Tensor::empty(src.dtype(), src.shape());
  if (src.nbytes() == 0) return out;
  cuda_call::DeviceScope scope(src.device().index);
  const cudaStream_t stream = stream_or_work(stream_arg);
  HFPORT_CORE_CUDA(cudaMemcpyAsync(out.data(), src.data(), src.nbytes(), cudaMemcpyDeviceToHost,
                                   stream));
  HFPORT_CORE_CUDA(cudaStreamSynchronize(stream));
  return out;
}

Tensor device_to_device(const Tensor& src, const Device& device, void* stream_arg) {
  Tensor out = Tensor::empty(src.dtype(), src.shape(), device);
  if (src.nbytes() == 0) return out;
  cuda_call::DeviceScope scope(device.index);
  const cudaStream_t stream = stream_or_work(stream_arg);
  if (src.device() == device) {
    HFPORT_CORE_CUDA(cudaMemcpyAsync(out.data(), src.data(), src.nbytes(),
                                     cudaMemcpyDeviceToDevice, stream));
  } else {
    // The source is ready on its own device's work stream, which `stream` (a stream of the
    // destination device) knows nothing about: make it wait there first.
    cuda_stream_wait_for_work(src.device(), stream);
    HFPORT_CORE_CUDA(cudaMemcpyPeerAsync(out.data(), device.index, src.data(),
                                         src.device().index, src.nbytes(), stream));
  }
  return out;
}

#endif  // HFPORT_WITH_CUDA

}  // namespace

Tensor copy_to_device(const Tensor& src, const Device& device, void* stream) {
  if (!src.defined()) throw ArgumentError("to_device: the tensor is undefined (default-constructed)");
  const Device from = src.device();
  if (from.type == DeviceType::CPU && device.type == DeviceType::CPU) return src.clone();
  require_usable_device(from, "to_device");
  require_usable_device(device, "to_device");
  if (from.type == DeviceType::CUDA && !src.is_contiguous()) {
    throw ArgumentError("to_device: the " + describe(src) + " has strides " +
                        shape_to_string(src.strides()) + "; hfport copies only contiguous CUDA "
                        "tensors (no device gather yet)");
  }
#ifdef HFPORT_WITH_CUDA
  if (from.type == DeviceType::CPU) return upload(src, device, stream);
  if (device.type == DeviceType::CPU) return download(src, stream);
  return device_to_device(src, device, stream);
#else
  (void)stream;
  throw DeviceError("to_device: unreachable without CUDA");  // require_usable_device threw
#endif
}

Tensor to_device(const Tensor& src, const Device& device, void* stream) {
  if (src.defined() && src.device() == device) return src;
  return copy_to_device(src, device, stream);
}

}  // namespace hfport
