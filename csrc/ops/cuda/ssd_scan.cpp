// hfport::ssd_scan and ssd_state_update for tensors on a CUDA device: the checks the CPU side runs
// (ops/ssd_scan.h), then the kernels of kernels/cuda/ssd_scan.cu on hfport's work stream. Host
// code, compiled only with CUDA.
#include "ops/cuda/ssd_scan.h"

#include <initializer_list>
#include <utility>

#include "kernels/cuda/ssd_scan.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kScan = "ssd_scan";
constexpr const char* kUpdate = "ssd_state_update";

Tensor f32_or_none(const char* op, const char* arg, const Tensor& t) {
  return t.defined() ? contiguous_as(op, arg, t, DType::F32) : Tensor();
}

// B or C [batch, L, G, N], any float type and strides, as contiguous F32 [batch, G, L, N] on its
// device (the layout the kernel reads; the CPU side packs the same on the host).
Tensor pack_group_major(const char* arg, const Tensor& t) {
  const auto& sh = t.shape();
  const auto& st = t.strides();
  const Tensor view(t.storage(), t.byte_offset(), t.dtype(), {sh[0], sh[2], sh[1], sh[3]},
                    {st[0], st[2], st[1], st[3]});
  return contiguous_as(kScan, arg, view, DType::F32);
}

// The kernels write `out` while they still read their inputs.
void require_out_apart(const char* op, const Tensor& out,
                       std::initializer_list<std::pair<const char*, const Tensor*>> inputs) {
  for (const auto& [name, input] : inputs) require_no_overlap(op, out, *input, name);
}

}  // namespace

SsdScanResult ssd_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                       const Tensor& C, const SsdScanOptions& o) {
  const SsdShapes s = check_ssd_scan_arguments(x, dt, A, B, C, o);
  const Device device = x.device();
  const CurrentDevice current(device);
  SsdScanResult result;
  result.out = output_on(kScan, o.out, x.dtype(), x.shape(), device);
  require_out_apart(kScan, result.out, {{"x", &x}, {"dt", &dt}, {"B", &B}, {"C", &C}});
  // The kernel carries the state in this buffer, so it exists whether or not it is returned.
  const Tensor states = Tensor::empty(DType::F32, {s.batch, s.heads, s.head_dim, s.dstate}, device);
  if (o.return_final_states) result.final_states = states;
  SsdF32Operands f32;
  f32.initial_states = f32_or_none(kScan, "initial_states", o.initial_states);
  f32.A = contiguous_as(kScan, "A", A, DType::F32);
  f32.B = pack_group_major("B", B);
  f32.C = pack_group_major("C", C);
  f32.D = f32_or_none(kScan, "D", o.D);
  f32.dt_bias = f32_or_none(kScan, "dt_bias", o.dt_bias);
  const SsdScanParams p = ssd_scan_params(s, x, dt, f32, o, result.out, states);
  ssd_scan(p, op_stream());
  return result;
}

Tensor ssd_state_update(const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A,
                        const Tensor& B, const Tensor& C, const SsdStateUpdateOptions& o) {
  const SsdShapes s = check_ssd_state_update_arguments(state, x, dt, A, B, C, o);
  const Device device = state.device();
  const CurrentDevice current(device);
  Tensor y = output_on(kUpdate, o.out, x.dtype(), x.shape(), device);
  require_out_apart(kUpdate, y,
                    {{"state", &state}, {"x", &x}, {"dt", &dt}, {"B", &B}, {"C", &C}});
  if (y.numel() == 0) return y;
  SsdF32Operands f32;
  f32.A = contiguous_as(kUpdate, "A", A, DType::F32);
  f32.B = contiguous_as(kUpdate, "B", B, DType::F32);
  f32.C = contiguous_as(kUpdate, "C", C, DType::F32);
  f32.D = f32_or_none(kUpdate, "D", o.D);
  f32.dt_bias = f32_or_none(kUpdate, "dt_bias", o.dt_bias);
  const SsdStateUpdateParams p = ssd_state_update_params(s, state, x, dt, f32, o, y);
  ssd_state_update(p, op_stream());
  return y;
}

}  // namespace hfport::cuda
