// Depthwise causal 1-D convolution (Mamba's short conv) and its one-step form: the entry points,
// on the device of their tensors (the CPU kernels of kernels/cpu/causal_conv1d.h, or the CUDA
// side, ops/cuda/causal_conv1d.h).
//
//   out[b,d,t] = act(bias[d] + sum_k weight[d,k] * x[b,d,t - (width-1) + k])   (x = 0 before t = 0)
//
// which is torch's conv1d with groups = dim and padding width - 1, cut to the first L outputs, as
// transformers' MambaMixer computes it. act is none or silu.
//
// The one-step form keeps the last inputs of each channel in conv_state [batch, dim, S] (S >= width - 1;
// transformers' Mamba cache uses S = width): for each new column x_t it shifts the state left by
// one, writes x_t into the last slot, and returns act(bias + sum_k weight[d,k] * window[k]) where
// the window is the last `width` values of (old state, x_t). Running it over a sequence from a zero
// state gives the full convolution.
//
// Layout and precision: x is [batch, dim, L] with any strides, F32, F16 or BF16; the output is a
// contiguous [batch, dim, L] of x's dtype. weight [dim, width] and bias [dim] are read as F32; sums
// are F32. conv_state keeps its own dtype (any of the three) and strides; it is written in place.
#pragma once

#include <string>

#include "core/tensor.h"
#include "kernels/causal_conv1d_params.h"

namespace hfport {

enum class ConvActivation { None, Silu };

// "silu" / "swish" -> Silu, "" / "none" -> None; anything else is an error naming `op`.
ConvActivation conv_activation_from_name(const char* op, const std::string& name);

// causal_conv1d and causal_conv1d_update run on the device of their tensors (all on one:
// DeviceError otherwise), the CPU or CUDA.
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                     ConvActivation activation = ConvActivation::None, const Tensor& out = Tensor());

// Float64 reference, straight from the formula above; returns F64 [batch, dim, L].
Tensor causal_conv1d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                               ConvActivation activation = ConvActivation::None);

// One step (x [batch, dim], returns [batch, dim]) or several (x [batch, dim, L], returns
// [batch, dim, L], the steps taken in order); conv_state is updated in place.
Tensor causal_conv1d_update(const Tensor& x, const Tensor& conv_state, const Tensor& weight,
                            const Tensor& bias = Tensor(),
                            ConvActivation activation = ConvActivation::None);

// The argument checks (dtypes, shapes; not the device) both ops run on either device: the CPU
// paths and the CUDA side (ops/cuda/causal_conv1d.cpp) share them.
void check_causal_conv1d_arguments(const Tensor& x, const Tensor& weight, const Tensor& bias);
struct ConvUpdateShapes {
  int64_t batch = 0, dim = 0, seqlen = 0, width = 0, state_len = 0;  // seqlen 1 for [batch, dim] x
};
ConvUpdateShapes check_causal_conv1d_update_arguments(const Tensor& x, const Tensor& conv_state,
                                                      const Tensor& weight, const Tensor& bias);

// The kernels' Params (kernels/causal_conv1d_params.h) of a checked call, the same for both
// devices: `weight_f32` and `bias_f32` are the contiguous F32 copies the kernels read, `out` the
// output, all on the device that runs the kernel.
CausalConv1dParams causal_conv1d_params(const Tensor& x, const Tensor& weight_f32,
                                        const Tensor& bias_f32, ConvActivation activation,
                                        const Tensor& out);
CausalConv1dUpdateParams causal_conv1d_update_params(const ConvUpdateShapes& shapes,
                                                     const Tensor& x, const Tensor& conv_state,
                                                     const Tensor& weight_f32,
                                                     const Tensor& bias_f32,
                                                     ConvActivation activation, const Tensor& out);

}  // namespace hfport
