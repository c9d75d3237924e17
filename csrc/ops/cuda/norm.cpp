// hfport::rms_norm, layer_norm and rms_norm_gated for tensors on a CUDA device: the checks the CPU
// side runs (ops/norm.h), then operands made contiguous on the device and the kernels of
// kernels/cuda/norm.cu launched on hfport's work stream. Host code, compiled only in builds with
// CUDA.
#include "ops/cuda/norm.h"

#include <cstdint>

#include "kernels/cuda/norm.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kRms = "rms_norm";
constexpr const char* kLayer = "layer_norm";
constexpr const char* kGated = "rms_norm_gated";

// [..., hidden] as rows x cols; no rows at all when hidden is 0.
void set_rows(NormParams& p, const Tensor& x) {
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
}

}  // namespace

RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps,
                       const RmsNormOptions& options) {
  check_rms_norm_arguments(x, weight, options);
  const CurrentDevice current(x.device());
  const Tensor xc = contiguous_as(kRms, "x", x, x.dtype());
  const Tensor rc = options.residual.defined()
                        ? contiguous_as(kRms, "residual", options.residual, x.dtype())
                        : Tensor();
  const Tensor w = contiguous_as(kRms, "weight", weight, DType::F32);
  RmsNormResult result;
  result.out = output_on(kRms, options.out, x.dtype(), x.shape(), x.device());
  if (rc.defined()) result.residual_sum = Tensor::empty(x.dtype(), x.shape(), x.device());

  NormParams p;
  set_rows(p, x);
  p.dtype = x.dtype();
  p.x = xc.data();
  p.residual = rc.defined() ? rc.data() : nullptr;
  p.weight = w.data_as<float>();
  p.eps = static_cast<float>(eps);
  p.add_unit_offset = options.add_unit_offset;
  p.out = result.out.data();
  p.residual_sum = rc.defined() ? result.residual_sum.data() : nullptr;
  rms_norm(p, op_stream());
  return result;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& out) {
  check_layer_norm_arguments(x, weight, bias);
  const CurrentDevice current(x.device());
  const Tensor xc = contiguous_as(kLayer, "x", x, x.dtype());
  const Tensor w = weight.defined() ? contiguous_as(kLayer, "weight", weight, DType::F32) : Tensor();
  const Tensor b = bias.defined() ? contiguous_as(kLayer, "bias", bias, DType::F32) : Tensor();
  Tensor result = output_on(kLayer, out, x.dtype(), x.shape(), x.device());

  NormParams p;
  set_rows(p, x);
  p.dtype = x.dtype();
  p.x = xc.data();
  p.weight = w.defined() ? w.data_as<float>() : nullptr;
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.eps = static_cast<float>(eps);
  p.out = result.data();
  layer_norm(p, op_stream());
  return result;
}

Tensor rms_norm_gated(const Tensor& x, const Tensor& weight, double eps,
                      const GatedRmsNormOptions& options) {
  const int64_t group = check_rms_norm_gated_arguments(x, weight, options);
  const CurrentDevice current(x.device());
  const Tensor xc = contiguous_as(kGated, "x", x, x.dtype());
  const Tensor gc =
      options.gate.defined() ? contiguous_as(kGated, "gate", options.gate, x.dtype()) : Tensor();
  const Tensor w = contiguous_as(kGated, "weight", weight, DType::F32);
  Tensor result = output_on(kGated, options.out, x.dtype(), x.shape(), x.device());

  GatedRmsNormParams p;
  p.cols = x.shape().back();
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.group_size = group;
  p.dtype = x.dtype();
  p.x = xc.data();
  p.gate = gc.defined() ? gc.data() : nullptr;
  p.weight = w.data_as<float>();
  p.eps = static_cast<float>(eps);
  p.out = result.data();
  rms_norm_gated(p, op_stream());
  return result;
}

}  // namespace hfport::cuda
