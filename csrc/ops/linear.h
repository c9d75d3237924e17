// y = act(x @ weight^T + bias): torch.nn.functional.linear, optionally followed by a GELU, on the
// device of its arguments. This file's `linear` is the entry point for both devices: a CUDA x goes
// to ops/cuda/linear.h (cuBLASLt, with bias and GELU in the GEMM's epilogue); the CPU path calls
// OpenBLAS's cblas_sgemm (kernels/cpu/linear.h).
//
// x is [..., in] and weight [out, in]; y is a contiguous [..., out] of x's dtype. weight must have
// x's dtype (as torch requires); bias [out] may be any float type and is read as F32.
//
// F32 goes to sgemm without a copy of the weight: a row-major [out, in] weight (row stride >= in) is
// passed with the transpose flag, and a transposed view of an [in, out] matrix (column stride 1 in
// its first dimension, e.g. weight.t() of a GPT-2 Conv1D) is passed as it is, so both layouts run
// at BLAS speed; any other strides are copied once. x is made contiguous when it is not. The bias
// is written into y first and sgemm accumulates onto it (beta = 1).
//
// F16 and BF16 have no BLAS routine here: x and weight are converted to F32 (a copy the size of
// each), multiplied in F32, and the result rounded once to x's dtype. Converting a large weight on
// every call is the price of that; a model that calls linear repeatedly should keep F32 weights.
//
// The activation is applied to the F32 sum before that rounding, so the CPU and the GPU's fused
// epilogue round at the same point.
#pragma once

#include <string>

#include "core/tensor.h"

namespace hfport {

// What follows the GEMM and the bias. GeluTanh is torch's gelu(approximate="tanh"), the GELU
// cuBLASLt's epilogue computes; Gelu is the exact (erf) one, which on CUDA runs as a second pass
// over y (ops/cuda/linear.h says why).
enum class LinearActivation { None, Gelu, GeluTanh };

// "none" -> None, "gelu" -> Gelu, "gelu_tanh" -> GeluTanh; ArgumentError for anything else.
LinearActivation linear_activation_from_name(const std::string& name);

struct LinearOptions {
  LinearActivation activation = LinearActivation::None;
  // F32 on CUDA only: let cuBLASLt round the inputs to TF32 (10-bit mantissa) for the tensor
  // cores, as torch.backends.cuda.matmul.allow_tf32 does. Off, F32 is multiplied in F32. The CPU
  // ignores it (sgemm is F32 either way).
  bool allow_tf32 = false;
};

// The checks both devices share (dtypes, shapes, out not overlapping an input; where the tensors
// live is op_device's business) and the problem they describe: `rows` = the product of x's leading
// dimensions.
struct LinearShapes {
  int64_t rows = 0, in = 0, out = 0;
  Shape out_shape;
};
LinearShapes check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& out);

// How a GEMM reads `weight` [out, in] where it lies: rows of `in` elements `ld` apart (out_in: the
// [out, in] matrix itself, which the GEMM transposes), or rows of `out` elements `ld` apart (the
// transposed view of an [in, out] matrix). in_place false: neither; the caller makes a contiguous
// copy, which is then [out, in] with ld = in.
struct LinearWeightLayout {
  bool out_in = true;
  int64_t ld = 0;
  bool in_place = true;
};
LinearWeightLayout linear_weight_layout(const Tensor& weight);

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Tensor& out = Tensor(), const LinearOptions& options = {});

// Float64 reference: the sum over `in` in float64 from the exact inputs, then the activation in
// float64; returns F64 [..., out].
Tensor linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        LinearActivation activation = LinearActivation::None);

}  // namespace hfport
