// The CPU GEMM behind hfport::linear (ops/linear.h): OpenBLAS's cblas_sgemm, row major, onto a y
// that holds the bias first (beta = 1). F32 only; the entry point converts F16/BF16 around it.
#pragma once

#include <cstdint>

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

}  // namespace hfport
