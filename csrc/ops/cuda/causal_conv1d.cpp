// hfport::causal_conv1d and causal_conv1d_update for tensors on a CUDA device: the checks the CPU
// side runs (ops/causal_conv1d.h), then the kernels of kernels/cuda/causal_conv1d.cu on hfport's
// work stream. x and the state are handed to the kernels with their strides (no copy); the state
// is updated where the caller keeps it. Host code, compiled only in builds with CUDA.
#include "ops/cuda/causal_conv1d.h"

#include "kernels/cuda/causal_conv1d.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kConv = "causal_conv1d";
constexpr const char* kConvUpdate = "causal_conv1d_update";

}  // namespace

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                     ConvActivation activation, const Tensor& out) {
  check_causal_conv1d_arguments(x, weight, bias);
  const CurrentDevice current(x.device());
  const Tensor w = contiguous_as(kConv, "weight", weight, DType::F32);
  const Tensor b = bias.defined() ? contiguous_as(kConv, "bias", bias, DType::F32) : Tensor();
  Tensor result = output_on(kConv, out, x.dtype(), x.shape(), x.device());
  require_no_overlap(kConv, result, x, "x");

  causal_conv1d(causal_conv1d_params(x, w, b, activation, result), op_stream());
  return result;
}

Tensor causal_conv1d_update(const Tensor& x, const Tensor& conv_state, const Tensor& weight,
                            const Tensor& bias, ConvActivation activation) {
  const ConvUpdateShapes s = check_causal_conv1d_update_arguments(x, conv_state, weight, bias);
  const CurrentDevice current(x.device());
  const Tensor w = contiguous_as(kConvUpdate, "weight", weight, DType::F32);
  const Tensor b = bias.defined() ? contiguous_as(kConvUpdate, "bias", bias, DType::F32) : Tensor();
  Tensor result = Tensor::empty(x.dtype(), x.shape(), x.device());

  causal_conv1d_update(causal_conv1d_update_params(s, x, conv_state, w, b, activation, result),
                       op_stream());
  return result;
}

}  // namespace hfport::cuda
