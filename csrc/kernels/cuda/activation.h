// Elementwise activations on the GPU: the ops of kernels/cpu/activation.h (gelu exact and tanh as
// torch defines them, silu, and swiglu(gate, up) = silu(gate) * up), on device pointers.
// Host-callable; includes no CUDA header.
//
// Inputs and output are contiguous buffers of n elements of one dtype (F32, F16 or BF16); the
// function is evaluated in f32 and rounded once to that dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/cpu/activation.h"

namespace hfport::cuda {

enum class Activation { GeluErf, GeluTanh, Silu, Swiglu };

struct ActivationParams {
  Activation activation = Activation::Silu;
  int64_t n = 0;
  DType dtype = DType::F32;
  const void* x = nullptr;   // device; the gate for Swiglu
  const void* up = nullptr;  // device; Swiglu only
  void* out = nullptr;       // device; may be x or up (each element is read, then written, by one thread)
};

// Launches on `stream` (a cudaStream_t; nullptr is the default stream) and checks the launch.
// Throws ArgumentError for a dtype other than F32/F16/BF16, or Swiglu without `up`.
void activation(const ActivationParams& params, void* stream);

// The Tensor-level ops behind hfport::gelu / silu / swiglu (kernels/cpu/activation.h) for tensors
// on a CUDA device (defined in activation_op.cpp): the same checks and results, on hfport's work
// stream. Inputs are read in place when contiguous (else copied once); `out` may be an input.
Tensor gelu(const Tensor& x, GeluApproximation approximate, const Tensor& out);
Tensor silu(const Tensor& x, const Tensor& out);
Tensor swiglu(const Tensor& gate, const Tensor& up, const Tensor& out);

}  // namespace hfport::cuda
