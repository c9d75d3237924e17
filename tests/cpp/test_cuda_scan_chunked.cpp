// The CUDA selective scan at lengths that take its 128 x 16 block (L > 256): one partial chunk,
// exactly one chunk, a chunk plus a step, and several chunks carrying the state, through the
// kernel's Params (kernels/cuda/selective_scan.h) against the float64 reference of the CPU op.
// Outputs are poisoned; u and z are strided views, B and C views of [.., L, N] storage as Mamba
// passes them. (test_cuda_kernels.cpp covers the short lengths; tests/python/test_ops_scan_cuda.py
// the op on torch tensors.) Skips without a device.
#ifdef HFPORT_WITH_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <cuda_runtime_api.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "cuda_test_support.h"
#include "kernel_test_data.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/selective_scan.h"
#include "ops/selective_scan.h"

namespace {

using hfport::DType;
using hfport::Tensor;
using hfport_test::DeviceTensor;
using hfport_test::random_tensor;
using hfport_test::swap_dims;

struct LongCase {
  DType dtype;
  int64_t seqlen, dstate, groups;  // groups 0: B, C are [dim, N]; 1: [batch, N, L]; 2: grouped
};

class CudaScanChunked : public hfport_test::CudaDeviceTest {};

void check_long(const LongCase& c) {
  constexpr int64_t kBatch = 2, kDim = 6;
  SCOPED_TRACE(std::string(hfport::dtype_name(c.dtype)) + " L " + std::to_string(c.seqlen) +
               " N " + std::to_string(c.dstate) + " groups " + std::to_string(c.groups));
  const Tensor u = swap_dims(random_tensor(c.dtype, {kBatch, c.seqlen, kDim}), 1, 2);
  const Tensor delta = random_tensor(c.dtype, {kBatch, kDim, c.seqlen}, 0.5);
  const Tensor z = swap_dims(random_tensor(c.dtype, {kBatch, c.seqlen, kDim}), 1, 2);
  const Tensor A = hfport_test::negative_a(kDim, c.dstate);
  Tensor B, C;
  if (c.groups == 0) {
    B = random_tensor(c.dtype, {kDim, c.dstate});
    C = random_tensor(c.dtype, {kDim, c.dstate});
  } else if (c.groups == 1) {
    B = swap_dims(random_tensor(c.dtype, {kBatch, c.seqlen, c.dstate}), 1, 2);
    C = swap_dims(random_tensor(c.dtype, {kBatch, c.seqlen, c.dstate}), 1, 2);
  } else {
    B = swap_dims(random_tensor(c.dtype, {kBatch, c.groups, c.seqlen, c.dstate}), 2, 3);
    C = swap_dims(random_tensor(c.dtype, {kBatch, c.groups, c.seqlen, c.dstate}), 2, 3);
  }
  hfport::SelectiveScanOptions options;
  options.D = random_tensor(DType::F32, {kDim});
  options.z = z;
  options.delta_bias = random_tensor(DType::F32, {kDim}, 0.3);
  options.delta_softplus = true;
  options.return_last_state = true;
  const hfport::SelectiveScanResult want =
      hfport::selective_scan_reference(u, delta, A, B, C, options);

  DeviceTensor d_u(u), d_delta(delta), d_z(z), d_A(A), d_B(B), d_C(C);
  DeviceTensor d_D(options.D), d_bias(options.delta_bias);
  DeviceTensor d_out(hfport_test::poisoned(c.dtype, {kBatch, kDim, c.seqlen}));
  DeviceTensor d_last(hfport_test::poisoned(DType::F32, {kBatch, kDim, c.dstate}));

  hfport::cuda::SelectiveScanParams p;
  p.batch = kBatch;
  p.dim = kDim;
  p.seqlen = c.seqlen;
  p.dstate = c.dstate;
  p.n_groups = c.groups;
  p.dtype = c.dtype;
  p.u = d_u.get();
  p.u_batch_stride = d_u.stride(0);
  p.u_dim_stride = d_u.stride(1);
  p.u_seq_stride = d_u.stride(2);
  p.delta = d_delta.get();
  p.delta_batch_stride = d_delta.stride(0);
  p.delta_dim_stride = d_delta.stride(1);
  p.delta_seq_stride = d_delta.stride(2);
  p.z = d_z.get();
  p.z_batch_stride = d_z.stride(0);
  p.z_dim_stride = d_z.stride(1);
  p.z_seq_stride = d_z.stride(2);
  p.A_dtype = DType::F32;
  p.A = d_A.get();
  p.B_dtype = p.C_dtype = c.dtype;
  p.B = d_B.get();
  p.C = d_C.get();
  if (c.groups == 0) {
    p.B_dim_stride = d_B.stride(0);
    p.B_state_stride = d_B.stride(1);
    p.C_dim_stride = d_C.stride(0);
    p.C_state_stride = d_C.stride(1);
  } else {
    const size_t s = c.groups == 1 ? 1 : 2;  // the N dimension
    p.B_batch_stride = d_B.stride(0);
    p.B_group_stride = c.groups == 1 ? 0 : d_B.stride(1);
    p.B_state_stride = d_B.stride(s);
    p.B_seq_stride = d_B.stride(s + 1);
    p.C_batch_stride = d_C.stride(0);
    p.C_group_stride = c.groups == 1 ? 0 : d_C.stride(1);
    p.C_state_stride = d_C.stride(s);
    p.C_seq_stride = d_C.stride(s + 1);
  }
  p.D_dtype = DType::F32;
  p.D = d_D.get();
  p.delta_bias_dtype = DType::F32;
  p.delta_bias = d_bias.get();
  p.delta_softplus = true;
  p.out = d_out.get();
  p.last_state = static_cast<float*>(d_last.get());
  hfport::cuda::selective_scan(p, nullptr);
  HFPORT_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_LT(hfport_test::rel_l2(d_out.download(), want.out), hfport_test::tolerance(c.dtype));
  // The state is f32 from the same inputs on both sides, whatever their dtype.
  EXPECT_LT(hfport_test::rel_l2(d_last.download(), want.last_state), hfport_test::kF32Tolerance);
}

TEST_F(CudaScanChunked, LongSequencesMatchTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t groups : {int64_t{0}, int64_t{1}, int64_t{2}}) {
      for (int64_t seqlen : {int64_t{257}, int64_t{1000}, int64_t{2048}, int64_t{2049},
                             int64_t{2 * 2048 + 3}}) {
        check_long({dtype, seqlen, 16, groups});
      }
    }
  }
}

TEST_F(CudaScanChunked, StateSizesUpToTheLimit) {
  for (int64_t dstate : {int64_t{1}, int64_t{5}, int64_t{64}, hfport::cuda::kMaxScanState}) {
    check_long({DType::F32, 2049, dstate, 1});
  }
}

}  // namespace

#endif  // HFPORT_WITH_CUDA
