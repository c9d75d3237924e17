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

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data_as<float>() : nullptr; }

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
  const Tensor initial = f32_or_none(kScan, "initial_states", o.initial_states);
  const Tensor a = contiguous_as(kScan, "A", A, DType::F32);
  const Tensor b = pack_group_major("B", B);
  const Tensor c = pack_group_major("C", C);
  const Tensor d_skip = f32_or_none(kScan, "D", o.D);
  const Tensor bias = f32_or_none(kScan, "dt_bias", o.dt_bias);

  SsdScanParams p;
  p.batch = s.batch;
  p.seqlen = s.seqlen;
  p.heads = s.heads;
  p.head_dim = s.head_dim;
  p.dstate = s.dstate;
  p.n_groups = s.n_groups;
  p.chunk_size = o.chunk_size;
  p.dtype = x.dtype();
  p.x = x.data();
  read_strides(x, {&p.x_batch_stride, &p.x_seq_stride, &p.x_head_stride, &p.x_dim_stride});
  p.dt = dt.data();
  read_strides(dt, {&p.dt_batch_stride, &p.dt_seq_stride, &p.dt_head_stride});
  p.A = a.data_as<float>();
  p.B = b.data_as<float>();
  p.C = c.data_as<float>();
  p.D = data_or_null(d_skip);
  p.dt_bias = data_or_null(bias);
  p.dt_softplus = o.dt_softplus;
  p.dt_min = static_cast<float>(o.dt_min);  // inf stays inf
  p.dt_max = static_cast<float>(o.dt_max);
  p.initial_states = data_or_null(initial);
  p.out = result.out.data();
  p.final_states = states.data_as<float>();
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
  const Tensor a = contiguous_as(kUpdate, "A", A, DType::F32);
  const Tensor b = contiguous_as(kUpdate, "B", B, DType::F32);
  const Tensor c = contiguous_as(kUpdate, "C", C, DType::F32);
  const Tensor d_skip = f32_or_none(kUpdate, "D", o.D);
  const Tensor bias = f32_or_none(kUpdate, "dt_bias", o.dt_bias);

  SsdStateUpdateParams p;
  p.batch = s.batch;
  p.heads = s.heads;
  p.head_dim = s.head_dim;
  p.dstate = s.dstate;
  p.n_groups = s.n_groups;
  p.dtype = x.dtype();
  p.x = x.data();
  read_strides(x, {&p.x_batch_stride, &p.x_head_stride, &p.x_dim_stride});
  p.dt = dt.data();
  read_strides(dt, {&p.dt_batch_stride, &p.dt_head_stride});
  p.state_dtype = state.dtype();
  p.state = state.data();
  read_strides(state, {&p.state_batch_stride, &p.state_head_stride, &p.state_dim_stride,
                       &p.state_state_stride});
  p.A = a.data_as<float>();
  p.B = b.data_as<float>();
  p.C = c.data_as<float>();
  p.D = data_or_null(d_skip);
  p.dt_bias = data_or_null(bias);
  p.dt_softplus = o.dt_softplus;
  p.dt_min = static_cast<float>(o.dt_min);
  p.dt_max = static_cast<float>(o.dt_max);
  p.out = y.data();
  ssd_state_update(p, op_stream());
  return y;
}

}  // namespace hfport::cuda
