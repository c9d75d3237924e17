#include "ops/cuda/device_tensor.h"

#include <cuda_runtime_api.h>

#include <string>

#include "core/cuda/convert.h"
#include "core/cuda_stream.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

CurrentDevice::CurrentDevice(const Device& device) {
  require_usable_device(device, "CUDA op");
  HFPORT_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device.index) {
    HFPORT_CUDA_CHECK(cudaSetDevice(device.index));
    switched_ = true;
  }
}

CurrentDevice::~CurrentDevice() {
  if (switched_) cudaSetDevice(previous_);
}

void* op_stream() { return cuda_work_stream(); }

Tensor contiguous_as(const char* op, const char* arg, const Tensor& t, DType dtype) {
  require_defined(op, arg, t);
  for (DType d : {t.dtype(), dtype}) {
    if (!convert_supports(d)) {
      throw ArgumentError(std::string(op) + " (CUDA): " + arg + " is copied as F32, F16, BF16 or " +
                          "F64; " + std::string(dtype_name(t.dtype())) + " -> " +
                          std::string(dtype_name(dtype)) + " is not one of those copies");
    }
  }
  if (t.dtype() == dtype && t.is_contiguous()) return t;
  if (t.ndim() > kMaxConvertDims) {
    throw ArgumentError(std::string(op) + " (CUDA): " + arg + " has " + std::to_string(t.ndim()) +
                        " dimensions; a strided or cast copy takes at most " +
                        std::to_string(kMaxConvertDims));
  }
  Tensor result = Tensor::empty(dtype, t.shape(), t.device());
  ConvertParams p;
  p.ndim = static_cast<int>(t.ndim());
  for (int d = 0; d < p.ndim; ++d) {
    p.sizes[d] = t.shape()[d];
    p.src_strides[d] = t.strides()[d];
  }
  p.src_dtype = t.dtype();
  p.src = t.data();
  p.dst_dtype = dtype;
  p.dst = result.data();
  convert(p, op_stream());
  return result;
}

void copy_into(const char* op, const Tensor& src, const Tensor& dst) {
  require_defined(op, "src", src);
  require_defined(op, "dst", dst);
  if (src.device() != dst.device()) {
    throw DeviceError(std::string(op) + ": copy from " + device_name(src.device()) + " to " +
                      device_name(dst.device()) + "; both must be on one CUDA device");
  }
  require_shape(op, "dst", dst, src.shape(), "the source's shape");
  if (!convert_supports(src.dtype()) || !convert_supports(dst.dtype())) {
    throw ArgumentError(std::string(op) + " (CUDA): copies F32, F16, BF16 or F64, got " +
                        std::string(dtype_name(src.dtype())) + " -> " +
                        std::string(dtype_name(dst.dtype())));
  }
  if (src.ndim() > kMaxConvertDims) {
    throw ArgumentError(std::string(op) + " (CUDA): at most " + std::to_string(kMaxConvertDims) +
                        " dimensions, got " + std::to_string(src.ndim()));
  }
  ConvertParams p;
  p.ndim = static_cast<int>(src.ndim());
  for (int d = 0; d < p.ndim; ++d) {
    p.sizes[d] = src.shape()[d];
    p.src_strides[d] = src.strides()[d];
    p.dst_strides[d] = dst.strides()[d];
  }
  p.src_dtype = src.dtype();
  p.src = src.data();
  p.dst_dtype = dst.dtype();
  p.dst = dst.data();
  p.dst_strided = !dst.is_contiguous();
  convert(p, op_stream());
}

void zero_fill(const Tensor& t) {
  if (!t.is_contiguous()) throw ArgumentError("zero_fill (CUDA): the tensor must be contiguous");
  if (t.nbytes() == 0) return;
  HFPORT_CUDA_CHECK(cudaMemsetAsync(t.data(), 0, t.nbytes(), static_cast<cudaStream_t>(op_stream())));
}

Tensor output_on(const char* op, const Tensor& out, DType dtype, const Shape& shape,
                 const Device& device) {
  if (!out.defined()) return Tensor::empty(dtype, shape, device);
  if (out.device() != device) {
    throw DeviceError(std::string(op) + ": out must be on " + device_name(device) + ", got " +
                      device_name(out.device()));
  }
  require_shape(op, "out", out, shape, "the result's shape");
  if (out.dtype() != dtype) {
    throw ArgumentError(std::string(op) + ": out must have dtype " + std::string(dtype_name(dtype)) +
                        ", got " + std::string(dtype_name(out.dtype())));
  }
  if (!out.is_contiguous()) throw ArgumentError(std::string(op) + ": out must be contiguous");
  if (out.storage()->read_only()) {
    throw ArgumentError(std::string(op) + ": out is read-only memory (lent read-only through "
                        "DLPack)");
  }
  return out;
}

}  // namespace hfport::cuda
