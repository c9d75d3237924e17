// The CUDA kernels (kernels/cuda: rope, rms_norm, layer_norm, activations, causal_conv1d and its
// update, selective_scan and selective_state_update) against the CPU ops they mirror
// (ops/ on the host), on fresh random inputs at odd sizes, f32 / f16 / bf16, strided inputs where the
// kernel takes strides, outputs poisoned with NaN before each launch so that an element a kernel
// forgets to write fails the comparison. Relative L2 against the CPU op: f32 < 1e-5, f16 and bf16
// < 1e-2 (the CPU ops are themselves checked against float64 references in their own tests).
// Without a visible GPU the tests skip; without CUDA at build time the file holds no test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "core/build_info.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "kernel_test_data.h"

#ifdef HFPORT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "cuda_test_support.h"

#include "core/cast.h"
#include "core/error.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/causal_conv1d.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/selective_scan.h"
#include "ops/activation.h"
#include "ops/causal_conv1d.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/selective_scan.h"
#endif

namespace {

#ifdef HFPORT_WITH_CUDA

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::poisoned;
using hfport_test::throws_exactly;
using hfport_test::random_tensor;
using hfport_test::rel_l2;
using hfport_test::swap_dims;

using hfport_test::DeviceTensor;
using hfport_test::negative_a;
using hfport_test::tolerance;

class CudaKernels : public hfport_test::CudaDeviceTest {};

void synchronize() { HFPORT_CUDA_CHECK(cudaDeviceSynchronize()); }

// ---------------------------------------------------------------------------------------------
// RoPE

struct RopeCase {
  DType dtype;
  hfport::AttentionLayout layout;
  bool interleaved;
  int64_t head_dim, rotary_dim, width;  // width: the table's last dimension (rotary or rotary / 2)
  bool batched_table;
  DType table_dtype;
  bool transposed_input;  // q and k are strided views, not contiguous tensors
  bool inplace;
};

std::string describe(const RopeCase& c) {
  return std::string(hfport::dtype_name(c.dtype)) +
         (c.layout == hfport::AttentionLayout::BHSD ? " bhsd" : " bshd") +
         (c.interleaved ? " interleaved" : " half-split") + " D " + std::to_string(c.head_dim) +
         " R " + std::to_string(c.rotary_dim) + " W " + std::to_string(c.width) +
         (c.batched_table ? " batched table " : " shared table ") +
         std::string(hfport::dtype_name(c.table_dtype)) + (c.transposed_input ? " strided" : "") +
         (c.inplace ? " in place" : "");
}

// [B, H, S, D] (bhsd) or [B, S, H, D] (bshd); strided: the same shape as a swapped view of a
// tensor whose head and seq dimensions are stored the other way round.
Tensor rope_input(const RopeCase& c, int64_t batch, int64_t heads, int64_t seq) {
  const bool bhsd = c.layout == hfport::AttentionLayout::BHSD;
  const Shape stored = (bhsd != c.transposed_input) ? Shape{batch, heads, seq, c.head_dim}
                                                    : Shape{batch, seq, heads, c.head_dim};
  Tensor t = random_tensor(c.dtype, stored);
  return c.transposed_input ? swap_dims(t, 1, 2) : t;
}

hfport::RopeParams rope_params(const RopeCase& c, const DeviceTensor& x, const Tensor& host,
                                     const DeviceTensor& out, const DeviceTensor& cos,
                                     const DeviceTensor& sin, const Tensor& table) {
  const bool bhsd = c.layout == hfport::AttentionLayout::BHSD;
  const size_t head = bhsd ? 1 : 2, seq = bhsd ? 2 : 1;
  hfport::RopeParams p;
  p.batch = host.shape()[0];
  p.heads = host.shape()[head];
  p.seq = host.shape()[seq];
  p.head_dim = c.head_dim;
  p.rotary_dim = c.rotary_dim;
  p.interleaved = c.interleaved;
  p.dtype = c.dtype;
  p.x = x.get();
  p.x_stride[0] = x.stride(0);
  p.x_stride[1] = x.stride(head);
  p.x_stride[2] = x.stride(seq);
  p.out = out.get();
  p.out_stride[0] = out.stride(0);
  p.out_stride[1] = out.stride(head);
  p.out_stride[2] = out.stride(seq);
  p.table_dtype = c.table_dtype;
  p.cos = cos.get();
  p.sin = sin.get();
  p.table_stride[0] = table.ndim() == 3 && table.shape()[0] != 1 ? table.strides()[0] : 0;
  p.table_stride[1] = table.strides()[table.ndim() - 2];
  return p;
}

void check_rope(const RopeCase& c) {
  SCOPED_TRACE(describe(c));
  constexpr int64_t kBatch = 2, kSeq = 7, kQHeads = 5, kKHeads = 3;
  const Tensor q = rope_input(c, kBatch, kQHeads, kSeq);
  const Tensor k = rope_input(c, kBatch, kKHeads, kSeq);
  const Shape table_shape =
      c.batched_table ? Shape{kBatch, kSeq, c.width} : Shape{kSeq, c.width};
  const Tensor angles = random_tensor(DType::F64, table_shape, 2.0);
  Tensor cos = Tensor::empty(DType::F32, table_shape), sin = Tensor::empty(DType::F32, table_shape);
  for (int64_t i = 0; i < angles.numel(); ++i) {
    cos.data_as<float>()[i] = static_cast<float>(std::cos(angles.data_as<double>()[i]));
    sin.data_as<float>()[i] = static_cast<float>(std::sin(angles.data_as<double>()[i]));
  }
  cos = hfport::cast(cos, c.table_dtype);
  sin = hfport::cast(sin, c.table_dtype);

  hfport::RopeOptions options;
  options.interleaved = c.interleaved;
  options.rotary_dim = c.rotary_dim;
  options.layout = c.layout;
  const hfport::RopeResult want = hfport::rope(q, k, cos, sin, options);

  DeviceTensor d_cos(cos), d_sin(sin);
  const Tensor* inputs[2] = {&q, &k};
  const Tensor* expected[2] = {&want.q, &want.k};
  for (int t = 0; t < 2; ++t) {
    SCOPED_TRACE(t == 0 ? "q" : "k");
    const Tensor& host = *inputs[t];
    DeviceTensor d_x(host);
    DeviceTensor d_out(poisoned(c.dtype, host.shape()));
    const DeviceTensor& target = c.inplace ? d_x : d_out;
    hfport::cuda::rope(rope_params(c, d_x, host, target, d_cos, d_sin, cos), nullptr);
    synchronize();
    EXPECT_LT(rel_l2(target.download(), *expected[t]), tolerance(c.dtype));
    if (!c.inplace) {
      EXPECT_EQ(rel_l2(d_x.download(), host.contiguous()), 0.0) << "the input was written";
    }
  }
}

TEST_F(CudaKernels, RopeMatchesTheCpuOp) {
  using L = hfport::AttentionLayout;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (L layout : {L::BHSD, L::BSHD}) {
      for (bool interleaved : {false, true}) {
        // Full rotary with transformers' table, full with one value per frequency, partial.
        check_rope({dtype, layout, interleaved, 24, 24, 24, false, DType::F32, false, false});
        check_rope({dtype, layout, interleaved, 24, 24, 12, true, DType::F32, true, false});
        check_rope({dtype, layout, interleaved, 26, 10, 10, true, dtype, false, false});
        check_rope({dtype, layout, interleaved, 26, 10, 5, false, DType::BF16, true, true});
        check_rope({dtype, layout, interleaved, 24, 24, 24, false, DType::F16, false, true});
      }
    }
  }
}

// The launchers' argument checks run before any CUDA call, so these need no device.
TEST(CudaKernelArguments, RopeRejectsABadRotaryDimOrDtype) {
  hfport::RopeParams p;
  p.head_dim = 8;
  p.rotary_dim = 7;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::rope(p, nullptr); },
      {"rope (CUDA): rotary_dim must be even and in [2, head_dim = 8], got 7"}));
  p.rotary_dim = 10;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::cuda::rope(p, nullptr); },
                                                    {"got 10"}));
  p.rotary_dim = 8;
  p.table_dtype = DType::I32;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::rope(p, nullptr); },
      {"rope (CUDA): cos/sin must be F32, F16 or BF16, got I32"}));
}

// ---------------------------------------------------------------------------------------------
// Norms

TEST_F(CudaKernels, RmsNormMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 67}, {5, 1000}, {70000, 9}}) {
      for (bool unit_offset : {false, true}) {
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " rows " + std::to_string(rows) +
                       " cols " + std::to_string(cols) + (unit_offset ? " 1+w" : " w") +
                       (with_residual ? " residual" : ""));
          const Tensor x = random_tensor(dtype, {rows, cols});
          const Tensor weight = random_tensor(DType::F32, {cols}, 0.3, 1.0);
          hfport::RmsNormOptions options;
          options.add_unit_offset = unit_offset;
          if (with_residual) options.residual = random_tensor(dtype, {rows, cols});
          const hfport::RmsNormResult want = hfport::rms_norm(x, weight, 1e-5, options);

          DeviceTensor d_x(x), d_w(weight), d_out(poisoned(dtype, {rows, cols}));
          DeviceTensor d_res(with_residual ? options.residual : x);
          DeviceTensor d_sum(poisoned(dtype, {rows, cols}));
          hfport::NormParams p;
          p.rows = rows;
          p.cols = cols;
          p.dtype = dtype;
          p.x = d_x.get();
          p.residual = with_residual ? d_res.get() : nullptr;
          p.weight = d_w.as<float>();
          p.eps = 1e-5f;
          p.add_unit_offset = unit_offset;
          p.out = d_out.get();
          p.residual_sum = with_residual ? d_sum.get() : nullptr;
          hfport::cuda::rms_norm(p, nullptr);
          synchronize();
          EXPECT_LT(rel_l2(d_out.download(), want.out), tolerance(dtype));
          if (with_residual) {
            // One addition rounded once, to nearest even, on both sides: bit for bit.
            EXPECT_EQ(rel_l2(d_sum.download(), want.residual_sum), 0.0);
          }
        }
      }
    }
  }
}

TEST_F(CudaKernels, RmsNormInPlace) {
  const Tensor x = random_tensor(DType::BF16, {19, 301});
  const Tensor weight = random_tensor(DType::F32, {301}, 0.3, 1.0);
  const Tensor want = hfport::rms_norm(x, weight, 1e-6).out;
  DeviceTensor d_x(x), d_w(weight);
  hfport::NormParams p;
  p.rows = 19;
  p.cols = 301;
  p.dtype = DType::BF16;
  p.x = d_x.get();
  p.weight = d_w.as<float>();
  p.out = d_x.get();
  hfport::cuda::rms_norm(p, nullptr);
  synchronize();
  EXPECT_LT(rel_l2(d_x.download(), want), hfport_test::kBF16Tolerance);
}

TEST_F(CudaKernels, LayerNormMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 67}, {3, 2049}, {1000, 5}}) {
      for (bool affine : {false, true}) {
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " rows " + std::to_string(rows) +
                     " cols " + std::to_string(cols) + (affine ? " weight+bias" : ""));
        // A shifted input, so that a one-pass variance would lose digits.
        const Tensor x = random_tensor(dtype, {rows, cols}, 1.0, 3.0);
        const Tensor weight = random_tensor(DType::F32, {cols}, 0.3, 1.0);
        const Tensor bias = random_tensor(DType::F32, {cols}, 0.5);
        const Tensor want = affine ? hfport::layer_norm(x, weight, bias, 1e-5)
                                   : hfport::layer_norm(x, Tensor(), Tensor(), 1e-5);
        DeviceTensor d_x(x), d_w(weight), d_b(bias), d_out(poisoned(dtype, {rows, cols}));
        hfport::NormParams p;
        p.rows = rows;
        p.cols = cols;
        p.dtype = dtype;
        p.x = d_x.get();
        p.weight = affine ? d_w.as<float>() : nullptr;
        p.bias = affine ? d_b.as<float>() : nullptr;
        p.eps = 1e-5f;
        p.out = d_out.get();
        hfport::cuda::layer_norm(p, nullptr);
        synchronize();
        EXPECT_LT(rel_l2(d_out.download(), want), tolerance(dtype));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Activations

TEST_F(CudaKernels, ActivationsMatchTheCpuOps) {
  using A = hfport::Activation;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    // Not n = 1: gelu of one input below about -5 is 0 on both sides, and 0 / 0 is no comparison.
    for (int64_t n : {int64_t{5}, int64_t{1001}, int64_t{70001}}) {
      const Tensor x = random_tensor(dtype, {n}, 2.0);
      const Tensor up = random_tensor(dtype, {n});
      for (A kind : {A::GeluErf, A::GeluTanh, A::Silu, A::Swiglu}) {
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " n " + std::to_string(n) +
                     " activation " + std::to_string(static_cast<int>(kind)));
        Tensor want;
        switch (kind) {
          case A::GeluErf: want = hfport::gelu(x, hfport::GeluApproximation::None); break;
          case A::GeluTanh: want = hfport::gelu(x, hfport::GeluApproximation::Tanh); break;
          case A::Silu: want = hfport::silu(x); break;
          case A::Swiglu: want = hfport::swiglu(x, up); break;
        }
        DeviceTensor d_x(x), d_up(up), d_out(poisoned(dtype, {n}));
        hfport::ActivationParams p;
        p.activation = kind;
        p.n = n;
        p.dtype = dtype;
        p.x = d_x.get();
        p.up = kind == A::Swiglu ? d_up.get() : nullptr;
        p.out = d_out.get();
        hfport::cuda::activation(p, nullptr);
        synchronize();
        EXPECT_LT(rel_l2(d_out.download(), want), tolerance(dtype));
        // In place on the input.
        p.out = d_x.get();
        hfport::cuda::activation(p, nullptr);
        synchronize();
        EXPECT_LT(rel_l2(d_x.download(), want), tolerance(dtype));
      }
    }
  }
}

TEST(CudaKernelArguments, SwigluNeedsUp) {
  hfport::ActivationParams p;
  p.activation = hfport::Activation::Swiglu;
  p.n = 4;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::activation(p, nullptr); },
      {"swiglu (CUDA): up must be a device pointer, got null"}));
}

// ---------------------------------------------------------------------------------------------
// Causal conv1d

TEST_F(CudaKernels, CausalConv1dMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t width : {int64_t{1}, int64_t{4}}) {
      for (bool silu : {false, true}) {
        for (bool strided : {false, true}) {
          constexpr int64_t kBatch = 2, kDim = 37, kLen = 29;
          SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " width " +
                       std::to_string(width) + (silu ? " silu" : "") + (strided ? " strided" : ""));
          // Strided: [batch, L, dim] storage seen as [batch, dim, L] (the layout after in_proj).
          const Tensor x = strided ? swap_dims(random_tensor(dtype, {kBatch, kLen, kDim}), 1, 2)
                                   : random_tensor(dtype, {kBatch, kDim, kLen});
          const Tensor weight = random_tensor(DType::F32, {kDim, width}, 0.5);
          const Tensor bias = random_tensor(DType::F32, {kDim}, 0.5);
          const auto act = silu ? hfport::ConvActivation::Silu : hfport::ConvActivation::None;
          const Tensor want = hfport::causal_conv1d(x, weight, silu ? bias : Tensor(), act);

          DeviceTensor d_x(x), d_w(weight), d_b(bias), d_out(poisoned(dtype, {kBatch, kDim, kLen}));
          hfport::CausalConv1dParams p;
          p.batch = kBatch;
          p.dim = kDim;
          p.seqlen = kLen;
          p.width = width;
          p.dtype = dtype;
          p.x = d_x.get();
          p.x_batch_stride = d_x.stride(0);
          p.x_dim_stride = d_x.stride(1);
          p.x_seq_stride = d_x.stride(2);
          p.weight = d_w.as<float>();
          p.bias = silu ? d_b.as<float>() : nullptr;
          p.silu = silu;
          p.out = d_out.get();
          hfport::cuda::causal_conv1d(p, nullptr);
          synchronize();
          EXPECT_LT(rel_l2(d_out.download(), want), tolerance(dtype));
        }
      }
    }
  }
}

TEST_F(CudaKernels, CausalConv1dUpdateMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (DType state_dtype : {DType::F32, DType::BF16}) {
      for (int64_t state_len : {int64_t{3}, int64_t{4}, int64_t{6}}) {
        constexpr int64_t kBatch = 3, kDim = 37, kLen = 5, kWidth = 4;
        SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " state " +
                     std::string(hfport::dtype_name(state_dtype)) + " S " +
                     std::to_string(state_len));
        const Tensor x = random_tensor(dtype, {kBatch, kDim, kLen});
        // The state as a strided view: [batch, S, dim] storage seen as [batch, dim, S].
        const Tensor state = swap_dims(random_tensor(state_dtype, {kBatch, state_len, kDim}), 1, 2);
        const Tensor weight = random_tensor(DType::F32, {kDim, kWidth}, 0.5);
        const Tensor bias = random_tensor(DType::F32, {kDim}, 0.5);
        DeviceTensor d_state(state);  // uploaded before the CPU op changes the host state
        const Tensor host_state = state.contiguous().clone();
        const Tensor want = hfport::causal_conv1d_update(x, host_state, weight, bias,
                                                         hfport::ConvActivation::Silu);

        DeviceTensor d_x(x), d_w(weight), d_b(bias), d_out(poisoned(dtype, {kBatch, kDim, kLen}));
        hfport::CausalConv1dUpdateParams p;
        p.batch = kBatch;
        p.dim = kDim;
        p.seqlen = kLen;
        p.width = kWidth;
        p.dtype = dtype;
        p.x = d_x.get();
        p.x_batch_stride = d_x.stride(0);
        p.x_dim_stride = d_x.stride(1);
        p.x_seq_stride = d_x.stride(2);
        p.state_dtype = state_dtype;
        p.conv_state = d_state.get();
        p.state_len = state_len;
        p.state_batch_stride = d_state.stride(0);
        p.state_dim_stride = d_state.stride(1);
        p.state_seq_stride = d_state.stride(2);
        p.weight = d_w.as<float>();
        p.bias = d_b.as<float>();
        p.silu = true;
        p.out = d_out.get();
        hfport::cuda::causal_conv1d_update(p, nullptr);
        synchronize();
        EXPECT_LT(rel_l2(d_out.download(), want), tolerance(dtype));
        // The state is shifted copies and stored inputs: exact on both sides.
        EXPECT_EQ(rel_l2(d_state.download(), host_state), 0.0);
      }
    }
  }
}

TEST(CudaKernelArguments, CausalConv1dUpdateRejectsAShortState) {
  hfport::CausalConv1dUpdateParams p;
  p.width = 4;
  p.state_len = 2;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::causal_conv1d_update(p, nullptr); },
      {"conv_state must keep S >= width - 1 = 3 columns, got S = 2"}));
}

// ---------------------------------------------------------------------------------------------
// Selective scan

enum class BcLayout { Channel, Time, Grouped };

struct ScanCase {
  int64_t batch, dim, dstate, seqlen;
  BcLayout layout;
  DType dtype;
  bool all_options;
};

std::string describe(const ScanCase& c) {
  return std::string(hfport::dtype_name(c.dtype)) + " batch " + std::to_string(c.batch) +
         " dim " + std::to_string(c.dim) + " N " + std::to_string(c.dstate) + " L " +
         std::to_string(c.seqlen) + " layout " + std::to_string(static_cast<int>(c.layout)) +
         (c.all_options ? " D z bias softplus" : "");
}

// B or C in the case's layout; the time-varying ones are strided views of [.., L, N] storage.
Tensor scan_bc(const ScanCase& c, int64_t groups) {
  switch (c.layout) {
    case BcLayout::Channel: return random_tensor(c.dtype, {c.dim, c.dstate});
    case BcLayout::Time: return swap_dims(random_tensor(c.dtype, {c.batch, c.seqlen, c.dstate}), 1, 2);
    default: return swap_dims(random_tensor(c.dtype, {c.batch, groups, c.seqlen, c.dstate}), 2, 3);
  }
}

void check_scan(const ScanCase& c) {
  SCOPED_TRACE(describe(c));
  constexpr int64_t kGroups = 3;
  // u and z strided ([batch, L, dim] storage), delta contiguous.
  const Tensor u = swap_dims(random_tensor(c.dtype, {c.batch, c.seqlen, c.dim}), 1, 2);
  const Tensor delta = random_tensor(c.dtype, {c.batch, c.dim, c.seqlen}, 0.5);
  const Tensor A = negative_a(c.dim, c.dstate);
  const Tensor B = scan_bc(c, kGroups);
  const Tensor C = scan_bc(c, kGroups);
  hfport::SelectiveScanOptions options;
  if (c.all_options) {
    options.D = random_tensor(DType::BF16, {c.dim});
    options.z = swap_dims(random_tensor(c.dtype, {c.batch, c.seqlen, c.dim}), 1, 2);
    options.delta_bias = random_tensor(DType::F32, {c.dim}, 0.3);
    options.delta_softplus = true;
  }
  options.return_last_state = true;
  const hfport::SelectiveScanResult want = hfport::selective_scan(u, delta, A, B, C, options);

  DeviceTensor d_u(u), d_delta(delta), d_A(A), d_B(B), d_C(C);
  DeviceTensor d_D(c.all_options ? options.D : A), d_z(c.all_options ? options.z : u);
  DeviceTensor d_bias(c.all_options ? options.delta_bias : A);
  DeviceTensor d_out(poisoned(c.dtype, {c.batch, c.dim, c.seqlen}));
  DeviceTensor d_last(poisoned(DType::F32, {c.batch, c.dim, c.dstate}));

  hfport::cuda::SelectiveScanParams p;
  p.batch = c.batch;
  p.dim = c.dim;
  p.seqlen = c.seqlen;
  p.dstate = c.dstate;
  p.n_groups = c.layout == BcLayout::Channel ? 0 : (c.layout == BcLayout::Time ? 1 : kGroups);
  p.dtype = c.dtype;
  p.u = d_u.get();
  p.u_batch_stride = d_u.stride(0);
  p.u_dim_stride = d_u.stride(1);
  p.u_seq_stride = d_u.stride(2);
  p.delta = d_delta.get();
  p.delta_batch_stride = d_delta.stride(0);
  p.delta_dim_stride = d_delta.stride(1);
  p.delta_seq_stride = d_delta.stride(2);
  if (c.all_options) {
    p.z = d_z.get();
    p.z_batch_stride = d_z.stride(0);
    p.z_dim_stride = d_z.stride(1);
    p.z_seq_stride = d_z.stride(2);
    p.D_dtype = DType::BF16;
    p.D = d_D.get();
    p.delta_bias_dtype = DType::F32;
    p.delta_bias = d_bias.get();
    p.delta_softplus = true;
  }
  p.A_dtype = DType::F32;
  p.A = d_A.get();
  p.B_dtype = p.C_dtype = c.dtype;
  p.B = d_B.get();
  p.C = d_C.get();
  switch (c.layout) {
    case BcLayout::Channel:
      p.B_dim_stride = d_B.stride(0);
      p.B_state_stride = d_B.stride(1);
      p.C_dim_stride = d_C.stride(0);
      p.C_state_stride = d_C.stride(1);
      break;
    case BcLayout::Time:
      p.B_batch_stride = d_B.stride(0);
      p.B_state_stride = d_B.stride(1);
      p.B_seq_stride = d_B.stride(2);
      p.C_batch_stride = d_C.stride(0);
      p.C_state_stride = d_C.stride(1);
      p.C_seq_stride = d_C.stride(2);
      break;
    case BcLayout::Grouped:
      p.B_batch_stride = d_B.stride(0);
      p.B_group_stride = d_B.stride(1);
      p.B_state_stride = d_B.stride(2);
      p.B_seq_stride = d_B.stride(3);
      p.C_batch_stride = d_C.stride(0);
      p.C_group_stride = d_C.stride(1);
      p.C_state_stride = d_C.stride(2);
      p.C_seq_stride = d_C.stride(3);
      break;
  }
  p.out = d_out.get();
  p.last_state = d_last.as<float>();
  hfport::cuda::selective_scan(p, nullptr);
  synchronize();
  EXPECT_LT(rel_l2(d_out.download(), want.out), tolerance(c.dtype));
  // The state is F32 on both sides; only the inputs' dtype limits it.
  EXPECT_LT(rel_l2(d_last.download(), want.last_state), tolerance(c.dtype));
}

TEST_F(CudaKernels, SelectiveScanMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (BcLayout layout : {BcLayout::Channel, BcLayout::Time, BcLayout::Grouped}) {
      // N below a warp, Mamba's 16, and above 32 (two registers per lane); dim a multiple of the
      // 3 groups; one grid with more channels than blocks x warps cover.
      check_scan({1, 6, 3, 7, layout, dtype, true});
      check_scan({2, 39, 16, 70, layout, dtype, true});
      check_scan({3, 18, 37, 33, layout, dtype, false});
    }
  }
  check_scan({2, 65535 * 4 / 2 + 3, 2, 3, BcLayout::Time, DType::F32, false});
}

TEST(CudaKernelArguments, SelectiveScanRejectsAStateTooLargeOrBadGroups) {
  hfport::cuda::SelectiveScanParams p;
  p.batch = 1;
  p.dim = 1;
  p.seqlen = 1;
  p.dstate = hfport::cuda::kMaxScanState + 1;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::selective_scan(p, nullptr); },
      {"selective_scan (CUDA): the state size N must be in [1, 256], got 257"}));
  p.dstate = 4;
  p.dim = 4;
  p.n_groups = 3;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::selective_scan(p, nullptr); },
      {"the group count G = 3 must divide dim = 4"}));
  hfport::cuda::SelectiveStateUpdateParams q;
  q.dstate = 4;
  q.dim = 4;
  q.n_groups = 0;  // the update has no time-invariant form
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::selective_state_update(q, nullptr); },
      {"selective_state_update (CUDA): the group count G = 0 must divide dim = 4"}));
}

TEST_F(CudaKernels, SelectiveStateUpdateMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (DType state_dtype : {DType::F32, DType::BF16}) {
      for (int64_t groups : {int64_t{0}, int64_t{3}}) {  // 0: B and C are [batch, N]
        for (int64_t dstate : {int64_t{5}, int64_t{16}, int64_t{40}}) {
          constexpr int64_t kBatch = 3, kDim = 21;
          SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " state " +
                       std::string(hfport::dtype_name(state_dtype)) + " groups " +
                       std::to_string(groups) + " N " + std::to_string(dstate));
          const Tensor x = random_tensor(dtype, {kBatch, kDim});
          const Tensor dt = random_tensor(dtype, {kBatch, kDim}, 0.5);
          const Tensor z = random_tensor(dtype, {kBatch, kDim});
          const Tensor A = negative_a(kDim, dstate);
          const Shape bc = groups ? Shape{kBatch, groups, dstate} : Shape{kBatch, dstate};
          const Tensor B = random_tensor(DType::F32, bc);
          const Tensor C = random_tensor(dtype, bc);
          const Tensor D = random_tensor(DType::F32, {kDim});
          const Tensor dt_bias = random_tensor(DType::F32, {kDim}, 0.3);
          // The state strided: [batch, N, dim] storage seen as [batch, dim, N].
          const Tensor state = swap_dims(random_tensor(state_dtype, {kBatch, dstate, kDim}), 1, 2);
          DeviceTensor d_state(state);  // before the CPU op updates the host copy
          const Tensor host_state = state.contiguous().clone();
          hfport::SelectiveStateUpdateOptions options;
          options.D = D;
          options.z = z;
          options.dt_bias = dt_bias;
          options.dt_softplus = true;
          const Tensor want = hfport::selective_state_update(host_state, x, dt, A, B, C, options);

          DeviceTensor d_x(x), d_dt(dt), d_z(z), d_A(A), d_B(B), d_C(C), d_D(D), d_bias(dt_bias);
          DeviceTensor d_out(poisoned(dtype, {kBatch, kDim}));
          hfport::cuda::SelectiveStateUpdateParams p;
          p.batch = kBatch;
          p.dim = kDim;
          p.dstate = dstate;
          p.n_groups = groups ? groups : 1;
          p.dtype = dtype;
          p.x = d_x.get();
          p.x_batch_stride = d_x.stride(0);
          p.x_dim_stride = d_x.stride(1);
          p.dt = d_dt.get();
          p.dt_batch_stride = d_dt.stride(0);
          p.dt_dim_stride = d_dt.stride(1);
          p.z = d_z.get();
          p.z_batch_stride = d_z.stride(0);
          p.z_dim_stride = d_z.stride(1);
          p.state_dtype = state_dtype;
          p.state = d_state.get();
          p.state_batch_stride = d_state.stride(0);
          p.state_dim_stride = d_state.stride(1);
          p.state_state_stride = d_state.stride(2);
          p.A_dtype = DType::F32;
          p.A = d_A.get();
          p.B_dtype = DType::F32;
          p.B = d_B.get();
          p.B_batch_stride = d_B.stride(0);
          p.B_group_stride = groups ? d_B.stride(1) : 0;
          p.B_state_stride = d_B.stride(groups ? 2 : 1);
          p.C_dtype = dtype;
          p.C = d_C.get();
          p.C_batch_stride = d_C.stride(0);
          p.C_group_stride = groups ? d_C.stride(1) : 0;
          p.C_state_stride = d_C.stride(groups ? 2 : 1);
          p.D_dtype = DType::F32;
          p.D = d_D.get();
          p.dt_bias_dtype = DType::F32;
          p.dt_bias = d_bias.get();
          p.dt_softplus = true;
          p.out = d_out.get();
          hfport::cuda::selective_state_update(p, nullptr);
          synchronize();
          EXPECT_LT(rel_l2(d_out.download(), want), tolerance(dtype));
          EXPECT_LT(rel_l2(d_state.download(), host_state), tolerance(state_dtype));
        }
      }
    }
  }
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
