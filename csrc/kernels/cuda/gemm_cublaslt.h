// The GEMM behind hfport::linear on CUDA (ops/cuda/linear.h): one cuBLASLt matmul on device
// pointers, with an optional fused epilogue. Host code; includes no CUDA or cuBLAS header.
// Compiled only in builds with cuBLASLt (HFPORT_WITH_CUBLASLT).
//
// Column major, in cuBLASLt's terms: D [m, n] = op(A) [m, k] . B [k, n] (+ D with accumulate).
// linear computes its row-major y [rows, out] as the column-major transpose y^T [out, rows] =
// W [out, in] . x^T [in, rows]: m = out, n = rows, k = in, A the weight, B x, D y.
//
// Precision. F16 and BF16 in and out, products and sums in F32 (CUBLAS_COMPUTE_32F), the result
// rounded once to the output dtype; split-K partial sums are kept in F32 too, and reduced in a
// fixed order (the in-place and output-type reduction schemes are excluded), so a problem gives
// the same bits on every run. F32 is multiplied in F32 (CUBLAS_COMPUTE_32F), or, only with tf32,
// on tensor cores with inputs rounded to TF32 (CUBLAS_COMPUTE_32F_FAST_TF32). The bias is in the
// output's dtype (cuBLASLt's default for the epilogue's bias).
//
// Algorithm choice. cublasLtMatmulAlgoGetHeuristic's first answer, asked once per problem
// (sizes, leading dimensions, dtype, compute type, epilogue, transpose, and the byte alignment of
// each pointer, since an algorithm chosen for 256-byte-aligned operands may not run on 2-byte
// aligned ones) and cached per device together with the cuBLASLt handle and a 32 MiB workspace
// (the size NVIDIA recommends for Hopper). Every call on a device shares its workspace safely
// because every op runs in order on that device's work stream (core/cuda_stream.h). The heuristic
// cannot be told the bias's alignment: the caller passes a bias that starts kGemmBiasAlignment
// bytes aligned.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/storage.h"

namespace hfport::cuda {

// The bias alignment the epilogue may assume. The heuristic's alignment preferences cover A, B, C
// and D but not the bias pointer, so a chosen algorithm may read the bias in 16-byte vectors and
// fault ("misaligned address", which ends the CUDA context) on a bias view that starts off that.
inline constexpr uint32_t kGemmBiasAlignment = 16;

// What follows the product inside the GEMM. Gelu is cuBLASLt's GELU, the tanh approximation
// (torch's gelu(approximate="tanh")); the Bias forms add bias[m] to every column first.
enum class GemmEpilogue { None, Bias, Gelu, GeluBias };

struct CublasLtGemmParams {
  int device = 0;                  // the current device: its handle, workspace and cache are used
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;
  bool transpose_a = true;         // A stored [k, m] (weight as [out, in] rows); false: [m, k]
  DType dtype = DType::F32;        // of A, B, D and the bias: F32, F16 or BF16
  bool tf32 = false;               // F32 only: inputs rounded to TF32 on tensor cores
  GemmEpilogue epilogue = GemmEpilogue::None;
  const void* a = nullptr;         // device pointers
  const void* b = nullptr;
  void* d = nullptr;               // C and D: read too with accumulate
  const void* bias = nullptr;      // [m], for the Bias epilogues; kGemmBiasAlignment aligned
  bool accumulate = false;         // D = op(A) . B + D (beta = 1) instead of D = op(A) . B
};

// Runs the GEMM on `stream` when cuBLASLt has an algorithm for the problem and returns true;
// returns false, having run nothing, when it has none (cuBLASLt refuses some shapes and
// alignments; the caller falls back). CudaError when a cuBLASLt call fails otherwise.
bool gemm_cublaslt(const CublasLtGemmParams& params, void* stream);

// The algorithm cache of one device, for tests: how many heuristic queries it has made and how
// many problems it holds. Zeros for a device linear has not run on.
struct LinearAlgorithmCacheStats {
  int64_t heuristic_queries = 0;
  int64_t cached_problems = 0;
};
LinearAlgorithmCacheStats linear_algorithm_cache_stats(const Device& device);

}  // namespace hfport::cuda
