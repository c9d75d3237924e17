// The Tensor-level CUDA side of hfport::selective_scan / selective_state_update
// (ops/selective_scan.h) for tensors on a CUDA device: the same checks and results, on hfport's
// work stream, through the kernels of kernels/cuda/selective_scan.h. u, delta, z, B and C (and the
// update's x, dt, z, B, C) are read in place through their strides; A, D and the biases are made
// contiguous in their own dtype; the update's state is updated in the caller's own memory. `out`
// must not share memory with the inputs (ArgumentError). Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/selective_scan.h"

namespace hfport::cuda {

SelectiveScanResult selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A,
                                   const Tensor& B, const Tensor& C,
                                   const SelectiveScanOptions& options);
Tensor selective_state_update(const Tensor& state, const Tensor& x, const Tensor& dt,
                              const Tensor& A, const Tensor& B, const Tensor& C,
                              const SelectiveStateUpdateOptions& options);

}  // namespace hfport::cuda
