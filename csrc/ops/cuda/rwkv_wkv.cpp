// hfport::rwkv_wkv and rwkv_wkv_update for tensors on a CUDA device: the checks the CPU side runs
// (ops/rwkv_wkv.h), then the kernel of kernels/cuda/rwkv_wkv.cu on hfport's work stream. Host
// code, compiled only with CUDA.
#include "ops/cuda/rwkv_wkv.h"

#include <algorithm>

#include "core/device_copy.h"
#include "kernels/cuda/rwkv_wkv.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kWkv = "rwkv_wkv";
constexpr const char* kUpdate = "rwkv_wkv_update";
// The max of an empty state, as transformers' rwkv_linear_attention_cpu starts it.
constexpr float kEmptyMax = -1e38f;

// A fresh contiguous F32 copy of a state tensor on `device`: the kernel advances it in place.
Tensor state_copy(const char* arg, const Tensor& t, const Device& device) {
  Tensor copy = Tensor::empty(DType::F32, t.shape(), device);
  copy_into(kWkv, contiguous_as(kWkv, arg, t, DType::F32), copy);
  return copy;
}

}  // namespace

RwkvWkvResult rwkv_wkv(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v,
                       const RwkvWkvOptions& o) {
  const RwkvWkvShapes s = check_rwkv_wkv_arguments(w, u, k, v, o);
  const Device device = k.device();
  const CurrentDevice current(device);
  // The mask's values are checked on the host, as the CPU side checks them.
  const Tensor mask =
      o.mask.defined()
          ? to_device(rwkv_wkv_mask_u8(to_device(o.mask, Device{}), s.batch, s.seqlen), device)
          : Tensor();
  RwkvWkvResult result;
  result.out = output_on(kWkv, o.out, k.dtype(), k.shape(), device);
  require_no_overlap(kWkv, result.out, k, "k");
  require_no_overlap(kWkv, result.out, v, "v");
  if (o.state.num.defined()) {
    result.state = {state_copy("state num", o.state.num, device),
                    state_copy("state den", o.state.den, device),
                    state_copy("state max", o.state.max, device)};
  } else {
    result.state = {Tensor::empty(DType::F32, {s.batch, s.channels}, device),
                    Tensor::empty(DType::F32, {s.batch, s.channels}, device), Tensor()};
    zero_fill(result.state.num);
    zero_fill(result.state.den);
    Tensor empty_max = Tensor::empty(DType::F32, {s.batch, s.channels});
    std::fill_n(empty_max.data_as<float>(), s.batch * s.channels, kEmptyMax);
    result.state.max = to_device(empty_max, device);
  }
  if (k.numel() == 0) return result;
  const Tensor w32 = contiguous_as(kWkv, "w", w, DType::F32);
  const Tensor u32 = contiguous_as(kWkv, "u", u, DType::F32);
  RwkvWkvParams p = rwkv_wkv_base_params(s, k, v, w32, u32);
  p.mask = mask.defined() ? mask.data_as<uint8_t>() : nullptr;
  p.num = result.state.num.data_as<float>();
  p.den = result.state.den.data_as<float>();
  p.max = result.state.max.data_as<float>();
  p.out = result.out.data();
  rwkv_wkv(p, op_stream());
  return result;
}

Tensor rwkv_wkv_update(const RwkvWkvState& state, const Tensor& w, const Tensor& u,
                       const Tensor& k, const Tensor& v) {
  const RwkvWkvShapes s = check_rwkv_wkv_update_arguments(state, w, u, k, v);
  const Device device = k.device();
  const CurrentDevice current(device);
  Tensor y = Tensor::empty(k.dtype(), k.shape(), device);
  if (k.numel() == 0) return y;
  const Tensor w32 = contiguous_as(kUpdate, "w", w, DType::F32);
  const Tensor u32 = contiguous_as(kUpdate, "u", u, DType::F32);
  const RwkvWkvParams p = rwkv_wkv_update_params(s, k, v, w32, u32, state, y);
  rwkv_wkv(p, op_stream());
  return y;
}

}  // namespace hfport::cuda
