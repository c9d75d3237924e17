// hfport::rope for tensors on a CUDA device: plan_rope's checks and kernel parameters (shared with
// the CPU side, kernels/cpu/rope.h), copies made on the device, and the kernel of rope.cu launched
// once for q and once for k on hfport's work stream. Host code, compiled only in builds with CUDA.
#include <algorithm>
#include <optional>

#include "kernels/cpu/kernel_arguments.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/device_tensor.h"
#include "kernels/cuda/rope.h"

namespace hfport::cuda {

namespace {

// The CPU side's parameters (the same fields) as the CUDA kernel's struct.
RopeParams device_params(const hfport::RopeParams& h) {
  RopeParams p;
  p.batch = h.batch;
  p.heads = h.heads;
  p.seq = h.seq;
  p.head_dim = h.head_dim;
  p.rotary_dim = h.rotary_dim;
  p.interleaved = h.interleaved;
  p.dtype = h.dtype;
  p.x = h.x;
  std::copy(h.x_stride, h.x_stride + 3, p.x_stride);
  p.out = h.out;
  std::copy(h.out_stride, h.out_stride + 3, p.out_stride);
  p.table_dtype = h.table_dtype;
  p.cos = h.cos;
  p.sin = h.sin;
  std::copy(h.table_stride, h.table_stride + 2, p.table_stride);
  return p;
}

}  // namespace

RopeResult rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                const RopeOptions& options) {
  const Device device = op_device("rope", {{"q", &q}, {"k", &k}, {"cos", &cos}, {"sin", &sin}});
  // The device is made current before the first copy, which comes after plan_rope's checks: an
  // argument error needs no device.
  std::optional<CurrentDevice> current;
  RopePlan plan = plan_rope(q, k, cos, sin, options, [&](const char* arg, const Tensor& t) {
    if (!current) current.emplace(device);
    return contiguous_as("rope", arg, t, t.dtype());
  });
  if (!current) current.emplace(device);
  RopeResult result;
  const Tensor* inputs[2] = {&q, &k};
  hfport::RopeParams* params[2] = {&plan.q, &plan.k};
  Tensor* outputs[2] = {&result.q, &result.k};
  for (int t = 0; t < (plan.has_k ? 2 : 1); ++t) {
    // In place: the caller's own tensor, written through its strides (plan_rope has checked that
    // its last stride is 1, so the kernel reads and writes the same elements).
    *outputs[t] = options.inplace
                      ? *inputs[t]
                      : Tensor::empty(inputs[t]->dtype(), inputs[t]->shape(), device);
    set_rope_output(*params[t], *outputs[t], options.layout);
    rope(device_params(*params[t]), op_stream());
  }
  return result;
}

}  // namespace hfport::cuda
