// Depthwise causal 1-D convolution (Mamba's short conv) and its one-step update on the GPU: the ops
// of kernels/cpu/causal_conv1d.h, on device pointers. Host-callable; includes no CUDA header.
//
//   out[b,d,t] = act(bias[d] + sum_k weight[d,k] * x[b,d,t - (width-1) + k])   (x = 0 before t = 0)
//
// act is none or silu. The update keeps the last S >= width - 1 inputs of each channel in
// conv_state [batch, dim, S]; for each new column it computes the output over the window (last
// width - 1 state columns, then x_t), shifts the state left by one and stores x_t in the last
// slot. Run over a sequence from a zero state it gives the full convolution.
//
// x has any element strides; out is a contiguous [batch, dim, L] of x's dtype (F32, F16, BF16).
// weight [dim, width] and bias [dim] are contiguous F32; sums are F32. conv_state has its own dtype
// (any of the three) and strides, and is updated in place.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/cpu/causal_conv1d.h"

namespace hfport::cuda {

struct CausalConv1dParams {
  int64_t batch = 0, dim = 0, seqlen = 0, width = 0;
  DType dtype = DType::F32;       // of x and out
  const void* x = nullptr;        // device, [batch, dim, L]
  int64_t x_batch_stride = 0, x_dim_stride = 0, x_seq_stride = 0;
  const float* weight = nullptr;  // device, [dim, width] contiguous
  const float* bias = nullptr;    // device, [dim] or null
  bool silu = false;
  void* out = nullptr;            // device, [batch, dim, L] contiguous; must not overlap x
};

struct CausalConv1dUpdateParams {
  int64_t batch = 0, dim = 0, seqlen = 0, width = 0;  // seqlen: steps taken (1 for [batch, dim] x)
  DType dtype = DType::F32;       // of x and out
  const void* x = nullptr;        // device, [batch, dim, L]
  int64_t x_batch_stride = 0, x_dim_stride = 0, x_seq_stride = 0;
  DType state_dtype = DType::F32;
  void* conv_state = nullptr;     // device, [batch, dim, state_len], updated in place
  int64_t state_len = 0;          // S >= width - 1
  int64_t state_batch_stride = 0, state_dim_stride = 0, state_seq_stride = 0;
  const float* weight = nullptr;  // device, [dim, width] contiguous
  const float* bias = nullptr;    // device, [dim] or null
  bool silu = false;
  void* out = nullptr;            // device, [batch, dim, L] contiguous; must not overlap x or the state
};

// Launch on `stream` (a cudaStream_t; nullptr is the default stream) and check the launch. Throw
// ArgumentError for a dtype other than F32/F16/BF16, width < 1, or S < width - 1.
void causal_conv1d(const CausalConv1dParams& params, void* stream);
void causal_conv1d_update(const CausalConv1dUpdateParams& params, void* stream);

// The Tensor-level ops behind hfport::causal_conv1d / causal_conv1d_update
// (kernels/cpu/causal_conv1d.h) for tensors on a CUDA device (defined in causal_conv1d_op.cpp): the
// same checks and results, on hfport's work stream. x and conv_state are read through their
// strides, and conv_state is updated in the caller's own memory; weight and bias go to contiguous
// F32. `out` must not share memory with x (ArgumentError): a thread's window reads inputs that
// other threads' outputs would overwrite.
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                     ConvActivation activation, const Tensor& out);
Tensor causal_conv1d_update(const Tensor& x, const Tensor& conv_state, const Tensor& weight,
                            const Tensor& bias, ConvActivation activation);

}  // namespace hfport::cuda
