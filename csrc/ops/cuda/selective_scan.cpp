// hfport::selective_scan and selective_state_update for tensors on a CUDA device: the checks the
// CPU side runs (ops/selective_scan.h), then the kernels of kernels/cuda/selective_scan.cu on
// hfport's work stream. The big operands (u, delta, z, B, C; x, dt, z and the state of the update)
// go to the kernels with their strides and dtypes, so a transposed view costs no copy; only the
// small per-channel ones (A, D, the biases) are made contiguous. Host code, compiled only with
// CUDA.
#include "ops/cuda/selective_scan.h"

#include <initializer_list>
#include <utility>

#include "kernels/cuda/selective_scan.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kScan = "selective_scan";
constexpr const char* kUpdate = "selective_state_update";

// A [dim]-sized or [dim, N] parameter, contiguous in its own dtype; undefined stays undefined.
Tensor small_operand(const char* op, const char* arg, const Tensor& t) {
  return t.defined() ? contiguous_as(op, arg, t, t.dtype()) : Tensor();
}

const void* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// The kernels write `out` while they still read their inputs.
void require_out_apart(const char* op, const Tensor& out,
                       std::initializer_list<std::pair<const char*, const Tensor*>> inputs) {
  for (const auto& [name, input] : inputs) require_no_overlap(op, out, *input, name);
}

}  // namespace

SelectiveScanResult selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A,
                                   const Tensor& B, const Tensor& C,
                                   const SelectiveScanOptions& options) {
  const ScanShapes s = check_selective_scan_arguments(u, delta, A, B, C, options);
  const CurrentDevice current(u.device());
  const Tensor a = small_operand(kScan, "A", A);
  const Tensor d_skip = small_operand(kScan, "D", options.D);
  const Tensor bias = small_operand(kScan, "delta_bias", options.delta_bias);
  SelectiveScanResult result;
  result.out = output_on(kScan, options.out, u.dtype(), u.shape(), u.device());
  require_out_apart(kScan, result.out,
                    {{"u", &u}, {"delta", &delta}, {"z", &options.z}, {"B", &B}, {"C", &C}});
  if (options.return_last_state) {
    result.last_state = Tensor::empty(DType::F32, {s.batch, s.dim, s.dstate}, u.device());
  }

  SelectiveScanParams p;
  p.batch = s.batch;
  p.dim = s.dim;
  p.seqlen = s.seqlen;
  p.dstate = s.dstate;
  p.n_groups = s.n_groups;
  p.dtype = u.dtype();
  p.u = u.data();
  read_strides(u, {&p.u_batch_stride, &p.u_dim_stride, &p.u_seq_stride});
  p.delta = delta.data();
  read_strides(delta, {&p.delta_batch_stride, &p.delta_dim_stride, &p.delta_seq_stride});
  if (options.z.defined()) {
    p.z = options.z.data();
    read_strides(options.z, {&p.z_batch_stride, &p.z_dim_stride, &p.z_seq_stride});
  }
  p.A_dtype = A.dtype();
  p.A = a.data();
  p.B_dtype = B.dtype();
  p.B = B.data();
  p.C_dtype = C.dtype();
  p.C = C.data();
  if (B.ndim() == 2) {  // [dim, N]
    read_strides(B, {&p.B_dim_stride, &p.B_state_stride});
    read_strides(C, {&p.C_dim_stride, &p.C_state_stride});
  } else if (B.ndim() == 3) {  // [batch, N, L]: one group
    read_strides(B, {&p.B_batch_stride, &p.B_state_stride, &p.B_seq_stride});
    read_strides(C, {&p.C_batch_stride, &p.C_state_stride, &p.C_seq_stride});
  } else {  // [batch, G, N, L]
    read_strides(B, {&p.B_batch_stride, &p.B_group_stride, &p.B_state_stride, &p.B_seq_stride});
    read_strides(C, {&p.C_batch_stride, &p.C_group_stride, &p.C_state_stride, &p.C_seq_stride});
  }
  p.D_dtype = d_skip.defined() ? d_skip.dtype() : DType::F32;
  p.D = data_or_null(d_skip);
  p.delta_bias_dtype = bias.defined() ? bias.dtype() : DType::F32;
  p.delta_bias = data_or_null(bias);
  p.delta_softplus = options.delta_softplus;
  p.out = result.out.data();
  p.last_state = result.last_state.defined() ? result.last_state.data_as<float>() : nullptr;
  selective_scan(p, op_stream());
  return result;
}

Tensor selective_state_update(const Tensor& state, const Tensor& x, const Tensor& dt,
                              const Tensor& A, const Tensor& B, const Tensor& C,
                              const SelectiveStateUpdateOptions& options) {
  const UpdateShapes s = check_selective_state_update_arguments(state, x, dt, A, B, C, options);
  const CurrentDevice current(state.device());
  const Tensor a = small_operand(kUpdate, "A", A);
  const Tensor d_skip = small_operand(kUpdate, "D", options.D);
  const Tensor bias = small_operand(kUpdate, "dt_bias", options.dt_bias);
  Tensor y = output_on(kUpdate, options.out, x.dtype(), {s.batch, s.dim}, state.device());
  require_out_apart(kUpdate, y,
                    {{"state", &state}, {"x", &x}, {"dt", &dt}, {"z", &options.z}, {"B", &B},
                     {"C", &C}});

  SelectiveStateUpdateParams p;
  fill_state_update_step(p, s, state, x, dt, options.z);
  p.A_dtype = A.dtype();
  p.A = a.data();
  p.B_dtype = B.dtype();
  p.B = B.data();
  p.C_dtype = C.dtype();
  p.C = C.data();
  const auto& bs = B.strides();
  const auto& cs = C.strides();
  const bool grouped = B.ndim() == 3;  // [batch, G, N]; else [batch, N], one group
  p.B_batch_stride = bs[0];
  p.B_group_stride = grouped ? bs[1] : 0;
  p.B_state_stride = grouped ? bs[2] : bs[1];
  p.C_batch_stride = cs[0];
  p.C_group_stride = grouped ? cs[1] : 0;
  p.C_state_stride = grouped ? cs[2] : cs[1];
  p.D_dtype = d_skip.defined() ? d_skip.dtype() : DType::F32;
  p.D = data_or_null(d_skip);
  p.dt_bias_dtype = bias.defined() ? bias.dtype() : DType::F32;
  p.dt_bias = data_or_null(bias);
  p.dt_softplus = options.dt_softplus;
  p.out = y.data();
  selective_state_update(p, op_stream());
  return y;
}

}  // namespace hfport::cuda
