// Elementwise activations on the CPU (gelu exact and tanh, silu, swiglu), on the ActivationParams
// both devices share (kernels/activation_params.h). The entry points are hfport::gelu / silu /
// swiglu (ops/activation.h).
//
// Elements are spread over threads in large chunks; each is evaluated in F32 (silu through the
// vectorisable exp of float_math.h) and rounded once to the dtype.
#pragma once

#include "kernels/activation_params.h"

namespace hfport {

// On checked Params: host pointers, dtype F32, F16 or BF16, `up` set for Swiglu.
void activation_cpu(const ActivationParams& params);

}  // namespace hfport
