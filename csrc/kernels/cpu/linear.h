// y = x @ weight^T + bias (torch.nn.functional.linear) on the CPU, through OpenBLAS's cblas_sgemm.
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
#pragma once

#include "core/tensor.h"

namespace hfport {

// What sgemm is called with (row major): C[m, n] = X[m, k] op(W) + C.
struct LinearParams {
  int64_t m = 0, n = 0, k = 0;
  const float* x = nullptr;    // [m, k], row stride k
  const float* weight = nullptr;
  int64_t weight_ld = 0;       // leading dimension of weight as stored
  bool weight_is_out_in = true;  // true: stored [out, in] (sgemm transposes); false: [in, out]
  const float* bias = nullptr; // [n] or null
  float* out = nullptr;        // [m, n] contiguous
};

void linear_f32(const LinearParams& p);

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Tensor& out = Tensor());

// Float64 reference: the sum over `in` in float64 from the exact inputs; returns F64 [..., out].
Tensor linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace hfport
