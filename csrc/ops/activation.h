// Elementwise activations, the entry points: gelu (exact and tanh, as torch defines them), silu,
// and the gated swiglu(gate, up) = silu(gate) * up of LLaMA-style MLPs, on the device of their
// tensors (the CPU kernel of kernels/cpu/activation.h, or the CUDA side, ops/cuda/activation.h).
//
// Any float dtype in (F32, F16, BF16); the function is evaluated in F32 and rounded once to the
// input dtype; the output is a contiguous tensor of the input's shape. A non-contiguous input is
// copied once to a contiguous one.
#pragma once

#include <string>

#include "core/tensor.h"

namespace hfport {

enum class GeluApproximation { None, Tanh };

// "none" -> None, "tanh" -> Tanh (torch's names); anything else is an error.
GeluApproximation gelu_approximation_from_name(const std::string& name);

// Each runs on the device of its tensors (all on one: DeviceError otherwise), the CPU or CUDA.
Tensor gelu(const Tensor& x, GeluApproximation approximate = GeluApproximation::None,
            const Tensor& out = Tensor());
Tensor silu(const Tensor& x, const Tensor& out = Tensor());
// gate and up have one shape and one dtype.
Tensor swiglu(const Tensor& gate, const Tensor& up, const Tensor& out = Tensor());

// The argument checks (dtypes, shapes; not the device) the entry points run on either device:
// the CPU path and the CUDA side (ops/cuda/activation.cpp) share them.
void check_activation_arguments(const char* op, const Tensor& x);  // gelu, silu
void check_swiglu_arguments(const Tensor& gate, const Tensor& up);

// Float64 references (F64 outputs).
Tensor gelu_reference(const Tensor& x, GeluApproximation approximate = GeluApproximation::None);
Tensor silu_reference(const Tensor& x);
Tensor swiglu_reference(const Tensor& gate, const Tensor& up);

}  // namespace hfport
