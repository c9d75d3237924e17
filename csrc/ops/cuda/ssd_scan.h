// The Tensor-level CUDA side of hfport::ssd_scan / ssd_state_update (ops/ssd_scan.h) for tensors
// on a CUDA device: the same checks and results, on hfport's work stream, through the kernels of
// kernels/cuda/ssd_scan.h. x and dt (and the update's state) are read in place through their
// strides; B and C are packed to contiguous F32 [batch, G, L, N] on the device (the update's to
// [batch, G, N]); A, D, dt_bias and the initial states are made contiguous F32. `out` must not
// share memory with the inputs (ArgumentError). Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/ssd_scan.h"

namespace hfport::cuda {

SsdScanResult ssd_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                       const Tensor& C, const SsdScanOptions& options);
Tensor ssd_state_update(const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A,
                        const Tensor& B, const Tensor& C, const SsdStateUpdateOptions& options);

}  // namespace hfport::cuda
