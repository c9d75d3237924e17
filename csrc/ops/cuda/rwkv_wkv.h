// The Tensor-level CUDA side of hfport::rwkv_wkv / rwkv_wkv_update (ops/rwkv_wkv.h) for tensors
// on a CUDA device: the same checks and results, on hfport's work stream, through the kernel of
// kernels/cuda/rwkv_wkv.h. k and v are read in place through their strides; w and u are made
// contiguous F32; a mask is brought to the host once (it must then be contiguous), checked as on
// the CPU and uploaded as U8. `out` must not share memory with k or v (ArgumentError). The
// update's state is advanced in the caller's own memory. Compiled only in builds with CUDA.
#pragma once

#include "core/tensor.h"
#include "ops/rwkv_wkv.h"

namespace hfport::cuda {

RwkvWkvResult rwkv_wkv(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v,
                       const RwkvWkvOptions& options);
Tensor rwkv_wkv_update(const RwkvWkvState& state, const Tensor& w, const Tensor& u,
                       const Tensor& k, const Tensor& v);

}  // namespace hfport::cuda
