// hfport::rope for tensors on a CUDA device: plan_rope's checks and kernel parameters (shared with
// the CPU side, ops/rope.h), copies made on the device, and the kernel of kernels/cuda/rope.cu
// launched once for q and once for k on hfport's work stream. Host code, compiled only in builds
// with CUDA.
#include "ops/cuda/rope.h"

#include <optional>

#include "kernels/cuda/rope.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

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
  RopeParams* params[2] = {&plan.q, &plan.k};
  Tensor* outputs[2] = {&result.q, &result.k};
  for (int t = 0; t < (plan.has_k ? 2 : 1); ++t) {
    // In place: the caller's own tensor, written through its strides (plan_rope has checked that
    // its last stride is 1, so the kernel reads and writes the same elements).
    *outputs[t] = options.inplace
                      ? *inputs[t]
                      : Tensor::empty(inputs[t]->dtype(), inputs[t]->shape(), device);
    set_rope_output(*params[t], *outputs[t], options.layout);
    rope(*params[t], op_stream());
  }
  return result;
}

}  // namespace hfport::cuda
