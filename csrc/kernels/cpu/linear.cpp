// The CPU GEMM of linear; see linear.h.
#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>

namespace hfport {

void linear_f32(const LinearParams& p) {
  if (p.m == 0 || p.n == 0) return;
  for (int64_t r = 0; r < p.m; ++r) {
    float* row = p.out + r * p.n;
    if (p.bias) {
      std::copy(p.bias, p.bias + p.n, row);
    } else {
      std::fill(row, row + p.n, 0.0f);
    }
  }
  if (p.k == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, p.weight_is_out_in ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(p.m), static_cast<blasint>(p.n), static_cast<blasint>(p.k), 1.0f,
              p.x, static_cast<blasint>(p.k), p.weight, static_cast<blasint>(p.weight_ld), 1.0f,
              p.out, static_cast<blasint>(p.n));
}

}  // namespace hfport
