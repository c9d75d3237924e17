// The kernels' view of one elementwise activation, the same struct for the CPU kernel
// (kernels/cpu/activation.h) and the CUDA one (kernels/cuda/activation.h): gelu exact and tanh as
// torch defines them, silu, and swiglu(gate, up) = silu(gate) * up. The entry points
// (ops/activation.h, and linear's epilogue) fill it after every check.
//
// Inputs and output are contiguous buffers of n elements of one dtype (F32, F16 or BF16) on the
// device that runs the kernel; the function is evaluated in f32 and rounded once to that dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

enum class Activation { GeluErf, GeluTanh, Silu, Swiglu };

struct ActivationParams {
  Activation activation = Activation::Silu;
  int64_t n = 0;
  DType dtype = DType::F32;
  const void* x = nullptr;   // the gate for Swiglu
  const void* up = nullptr;  // Swiglu only
  void* out = nullptr;       // may be x or up (each element is read, then written, by one thread)
};

}  // namespace hfport
