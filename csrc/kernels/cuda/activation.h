// Elementwise activations on the GPU (gelu exact and tanh as torch defines them, silu, and
// swiglu(gate, up) = silu(gate) * up), on the ActivationParams both devices share
// (kernels/activation_params.h). Host-callable; includes no CUDA header. All pointers are device
// pointers.
#pragma once

#include "kernels/activation_params.h"

namespace hfport::cuda {

// Launches on `stream` (a cudaStream_t; nullptr is the default stream) and checks the launch.
// Throws ArgumentError for a dtype other than F32/F16/BF16, or Swiglu without `up`.
void activation(const ActivationParams& params, void* stream);

}  // namespace hfport::cuda
