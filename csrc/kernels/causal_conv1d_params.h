// The kernels' view of one depthwise causal conv1d call and of its update, the same structs for
// the CPU kernels (kernels/cpu/causal_conv1d.h) and the CUDA ones (kernels/cuda/causal_conv1d.h).
// The entry points (ops/causal_conv1d.h) fill them after every check, with pointers on the device
// that runs the kernel.
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

namespace hfport {

struct CausalConv1dParams {
  int64_t batch = 0, dim = 0, seqlen = 0, width = 0;
  DType dtype = DType::F32;       // of x and out
  const void* x = nullptr;        // [batch, dim, L]
  int64_t x_batch_stride = 0, x_dim_stride = 0, x_seq_stride = 0;
  const float* weight = nullptr;  // [dim, width] contiguous
  const float* bias = nullptr;    // [dim] or null
  bool silu = false;
  void* out = nullptr;            // [batch, dim, L] contiguous; must not overlap x on CUDA
};

struct CausalConv1dUpdateParams {
  int64_t batch = 0, dim = 0, seqlen = 0, width = 0;  // seqlen: steps taken (1 for [batch, dim] x)
  DType dtype = DType::F32;       // of x and out
  const void* x = nullptr;        // [batch, dim, L]
  int64_t x_batch_stride = 0, x_dim_stride = 0, x_seq_stride = 0;
  DType state_dtype = DType::F32;
  void* conv_state = nullptr;     // [batch, dim, state_len], updated in place
  int64_t state_len = 0;          // S >= width - 1
  int64_t state_batch_stride = 0, state_dim_stride = 0, state_seq_stride = 0;
  const float* weight = nullptr;  // [dim, width] contiguous
  const float* bias = nullptr;    // [dim] or null
  bool silu = false;
  void* out = nullptr;            // [batch, dim, L] contiguous; must not overlap x or the state
};

}  // namespace hfport
