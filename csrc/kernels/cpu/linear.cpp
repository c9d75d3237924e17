// The CPU GEMM of linear; see linear.h.
//
// Threads: the GEMM runs on hfport's own pool (core/parallel.h), each chunk a single-threaded
// cblas_sgemm over a slab of the output, and OpenBLAS's own threads are turned off. OpenBLAS's
// workers spin after each call, so a model that alternates GEMMs with hfport's other ops
// (attention, norms) had them compete for the cores with the pool's next op; on a 2-core machine
// that cost a vision forward about a fifth of its time (docs/decisions.md, "One thread pool for
// GEMMs too"). Slabs are rows of the output when there are enough of them, else column blocks
// (decoding: one row, many columns).
#include "kernels/cpu/linear.h"

#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu/blas_symbols.h"

namespace hfport {

namespace {

// Multiply-adds a thread should get at least, so the split pays for its wake-ups.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 20;
// Fewer output rows than this split the columns instead (OpenBLAS packs a slab of rows well).
constexpr int64_t kMinRowsToSplit = 32;

// C[rows, cols] (row stride ldc) = X[rows, k] op(W) + C, one thread.
void sgemm_slab(const LinearParams& p, int64_t row, int64_t rows, int64_t col, int64_t cols) {
  const float* weight = p.weight_is_out_in ? p.weight + col * p.weight_ld : p.weight + col;
  HFPORT_BLAS(cblas_sgemm)(
      CblasRowMajor, CblasNoTrans, p.weight_is_out_in ? CblasTrans : CblasNoTrans,
      static_cast<blasint>(rows), static_cast<blasint>(cols), static_cast<blasint>(p.k), 1.0f,
      p.x + row * p.k, static_cast<blasint>(p.k), weight, static_cast<blasint>(p.weight_ld), 1.0f,
      p.out + row * p.n + col, static_cast<blasint>(p.n));
}

void fill_bias(const LinearParams& p, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    float* row = p.out + r * p.n;
    if (p.bias) {
      std::copy(p.bias, p.bias + p.n, row);
    } else {
      std::fill(row, row + p.n, 0.0f);
    }
  }
}

}  // namespace

void linear_f32(const LinearParams& p) {
  if (p.m == 0 || p.n == 0) return;
  use_single_threaded_blas();
  const int64_t work = std::max<int64_t>(1, p.n * std::max<int64_t>(p.k, 1));
  if (p.m >= kMinRowsToSplit || p.k == 0) {
    parallel_for(p.m, std::max<int64_t>(1, kMinWorkPerThread / work), [&](int64_t begin, int64_t end) {
      fill_bias(p, begin, end);
      if (p.k > 0) sgemm_slab(p, begin, end - begin, 0, p.n);
    });
    return;
  }
  fill_bias(p, 0, p.m);
  const int64_t column_work = std::max<int64_t>(1, p.m * p.k);
  parallel_for(p.n, std::max<int64_t>(16, kMinWorkPerThread / column_work),
               [&](int64_t begin, int64_t end) { sgemm_slab(p, 0, p.m, begin, end - begin); });
}

}  // namespace hfport
