// The Tensor-level CUDA side of hfport::gelu / silu / swiglu (ops/activation.h) for tensors on a
// CUDA device: the same checks and results, on hfport's work stream, through the kernel of
// kernels/cuda/activation.h. Inputs are read in place when contiguous (else copied once); `out`
// may be an input. Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/activation.h"

namespace hfport::cuda {

Tensor gelu(const Tensor& x, GeluApproximation approximate, const Tensor& out);
Tensor silu(const Tensor& x, const Tensor& out);
Tensor swiglu(const Tensor& gate, const Tensor& up, const Tensor& out);

}  // namespace hfport::cuda
