// What the Tensor-level CUDA ops (ops/cuda/*.cpp) and the models' CUDA steps share: the device
// made current for the op, the stream it runs on, contiguous operands in a wanted dtype, and
// output tensors on the device. Host code; includes no CUDA header. Compiled only in builds with
// CUDA, and only called for tensors that are already on a CUDA device (ops/tensor_arguments.h:
// op_device).
#pragma once

#include "core/dtype.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace hfport::cuda {

// Makes `device` current for one scope (launches go to the current device) and restores the
// previous one after. DeviceError when the device cannot be used.
class CurrentDevice {
 public:
  explicit CurrentDevice(const Device& device);
  ~CurrentDevice();
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

// The stream every op launches on: hfport's work stream (core/cuda_stream.h), so results are
// ready in order on it, as the DLPack export promises.
void* op_stream();

// `t` itself when it is contiguous and of `dtype`; otherwise a contiguous copy of `dtype` on t's
// device (core/cuda/convert.h). Float dtypes (F32, F16, BF16, F64) only; ArgumentError naming
// `op` and `arg` for others.
Tensor contiguous_as(const char* op, const char* arg, const Tensor& t, DType dtype);

// dst = src element by element (a cast when the dtypes differ), both on one CUDA device, any
// strides on either side (dst's elements must not alias each other, nor overlap src). Float
// dtypes as contiguous_as; ArgumentError naming `op` for a shape mismatch.
void copy_into(const char* op, const Tensor& src, const Tensor& dst);

// Sets every byte of the contiguous CUDA tensor `t` to zero, in order on op_stream().
void zero_fill(const Tensor& t);

// The tensor an op writes into: `out` when given (it must be a contiguous tensor of `dtype` and
// `shape` on `device`; ArgumentError / DeviceError otherwise), else a fresh uninitialised one.
Tensor output_on(const char* op, const Tensor& out, DType dtype, const Shape& shape,
                 const Device& device);

}  // namespace hfport::cuda
