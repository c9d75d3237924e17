// The Tensor-level CUDA side of hfport::rope (ops/rope.h) for tensors on a CUDA device: the same
// checks (plan_rope) and results, on hfport's work stream, through the kernel of
// kernels/cuda/rope.h. With options.inplace, q and k are rotated in their own memory, through
// their strides. Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/rope.h"

namespace hfport::cuda {

RopeResult rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                const RopeOptions& options);

}  // namespace hfport::cuda
