// linear on the GPU: y = act(x @ weight^T + bias), the op of ops/linear.h (which dispatches here
// for CUDA tensors and shares its checks), through the cuBLASLt GEMM of
// kernels/cuda/gemm_cublaslt.h (which states its precision and how it picks and caches
// algorithms). Host code; includes no CUDA or cuBLAS header. Compiled only in builds with cuBLASLt
// (HFPORT_WITH_CUBLASLT).
//
// Layout. cuBLASLt is column major, so the row-major y [rows, out] is computed as its column-major
// transpose: y^T [out, rows] = W [out, in] . x^T [in, rows]. The contiguous x [rows, in] is x^T
// with ld = in, read as is; weight [out, in] with row stride ld is W^T in column major, read with
// TRANSA = T; the transposed view of an [in, out] matrix (GPT-2's Conv1D) is W itself, read with
// TRANSA = N; other strides are copied contiguous once. y is contiguous with ld = out.
//
// Precision. F16 and BF16 in and out with F32 products and sums; F32 in F32, or TF32 only with
// options.allow_tf32. The bias is converted to the output dtype first (cuBLASLt reads it in that
// type), as torch does where it requires bias and x to share a dtype.
//
// Epilogues. The bias and activation "gelu_tanh" run inside the GEMM (CUBLASLT_EPILOGUE_BIAS,
// _GELU, _GELU_BIAS): cuBLASLt's GELU is the tanh approximation, torch's
// gelu(approximate="tanh"). The exact GELU ("gelu", erf) has no cuBLASLt epilogue: the GEMM (with
// its bias epilogue) writes y and the activation kernel (kernels/cuda/activation.h) then rewrites
// it in place, one more read and write of y, rounded twice in F16/BF16 exactly like torch's
// gelu(linear(x, w, b)). The fused epilogue gets a bias that starts 16-byte aligned, copied there
// when the caller's does not. When cuBLASLt offers no algorithm with a fused epilogue for a
// problem, the separate placement below is used instead.
//
// A problem with no algorithm at all (cuBLASLt refuses some shapes or alignments) runs on the
// plain fallback GEMM (kernels/cuda/gemm_simple.h), bias and activation applied around it as in
// the separate placement, so CUDA takes every call the CPU op takes.
#pragma once

#include "core/tensor.h"
#include "ops/linear.h"

namespace hfport::cuda {

// Where the bias and the tanh GELU are applied. Fused: in cuBLASLt's epilogue. Separate: the
// bias is broadcast into y first and the GEMM adds onto it (beta = 1), and the activation runs as
// a pass over y after. Separate is what a problem without a fused algorithm gets; tests ask for it
// so that it runs on every shape they try.
enum class EpiloguePlacement { Fused, Separate };

// Tensors on one CUDA device (the caller, hfport::linear, has checked that). `out` as in the CPU
// op: a contiguous tensor of the result's shape and x's dtype on that device, or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
              const LinearOptions& options,
              EpiloguePlacement placement = EpiloguePlacement::Fused);

}  // namespace hfport::cuda
