// The Tensor-level CUDA side of hfport::causal_conv1d / causal_conv1d_update (ops/causal_conv1d.h)
// for tensors on a CUDA device: the same checks and results, on hfport's work stream, through the
// kernels of kernels/cuda/causal_conv1d.h. x and conv_state are read through their strides, and
// conv_state is updated in the caller's own memory; weight and bias go to contiguous F32. `out`
// must not share memory with x (ArgumentError): a thread's window reads inputs that other threads'
// outputs would overwrite. Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/causal_conv1d.h"

namespace hfport::cuda {

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                     ConvActivation activation, const Tensor& out);
Tensor causal_conv1d_update(const Tensor& x, const Tensor& conv_state, const Tensor& weight,
                            const Tensor& bias, ConvActivation activation);

}  // namespace hfport::cuda
