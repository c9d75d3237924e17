// y = x @ weight^T on the GPU without cuBLASLt: one thread per output element, a plain f32 sum
// over `in`. The fallback of cuda::linear for problems cuBLASLt's heuristic has no algorithm for
// (a dimension of 1, operands it cannot align); slow, and obviously right. Host-callable; includes
// no CUDA header.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport::cuda {

struct SimpleGemmParams {
  int64_t rows = 0, in = 0, out = 0;
  DType dtype = DType::F32;  // of x, weight and y: F32, F16 or BF16
  const void* x = nullptr;   // device, [rows, in] contiguous
  const void* weight = nullptr;  // device; element (o, i) at o * w_out_stride + i * w_in_stride
  int64_t w_out_stride = 0, w_in_stride = 0;
  void* y = nullptr;         // device, [rows, out] contiguous
  bool accumulate = false;   // y += x @ weight^T (y holds the bias already) instead of y =
};

// Launches on `stream` and checks the launch; ArgumentError for a dtype other than F32/F16/BF16.
void gemm_simple(const SimpleGemmParams& params, void* stream);

}  // namespace hfport::cuda
