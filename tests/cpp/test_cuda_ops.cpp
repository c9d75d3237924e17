// The Tensor-level ops (hfport::rope, rms_norm, layer_norm, gelu, silu, swiglu, causal_conv1d and
// its update, selective_scan and selective_state_update) given CUDA tensors: they run on the GPU
// and agree with the same op given host tensors (itself pinned to float64 in the CPU tests), at
// odd sizes, f32 / f16 / bf16, strided inputs, outputs poisoned with NaN, states updated in the
// caller's own memory. Relative L2 against the CPU op: f32 < 1e-5, f16 and bf16 < 1e-2.
//
// Two groups need no GPU and run everywhere: arguments on two devices are a DeviceError naming
// both (op_device, before anything touches memory), and CUDA tensors on a machine or build that
// cannot run them are a DeviceError too. Tensors for those are host bytes labelled as CUDA memory,
// never dereferenced. In CUDA builds, a bad shape on CUDA tensors gets the CPU op's own message
// (the checks are shared), also without a GPU. The rest skips without a visible device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/cast.h"
#include "core/device_copy.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/activation.h"
#include "ops/causal_conv1d.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/selective_scan.h"

#ifdef HFPORT_WITH_CUDA
#include "cuda_test_support.h"
#endif

namespace {

using hfport::Device;
using hfport::DeviceType;
using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::negative_a;
using hfport_test::poisoned;
using hfport_test::random_tensor;
using hfport_test::rel_l2;
using hfport_test::swap_dims;
using hfport_test::throws_exactly;

const Device kCuda0{DeviceType::CUDA, 0};

// Host bytes labelled as memory of cuda:0 (contiguous, F32 or the dtype given): only ever described,
// never read, by the tests that use it.
class LabelledCuda {
 public:
  Tensor tensor(const Shape& shape, DType dtype = DType::F32) {
    auto bytes = std::make_shared<std::vector<std::byte>>(
        static_cast<size_t>(hfport::shape_numel(shape)) * hfport::dtype_size(dtype) + 1);
    keep_.push_back(bytes);
    auto storage = std::make_shared<hfport::ExternalStorage>(bytes->data(), bytes->size(), kCuda0,
                                                             nullptr);
    return Tensor(storage, 0, dtype, shape, hfport::contiguous_strides(shape));
  }

 private:
  std::vector<std::shared_ptr<std::vector<std::byte>>> keep_;
};

TEST(CudaOpsDevices, ArgumentsOnTwoDevicesAreADeviceErrorNamingBoth) {
  LabelledCuda cuda;
  const Tensor x = random_tensor(DType::F32, {2, 8});
  const Tensor w_gpu = cuda.tensor({8});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::rms_norm(x, w_gpu, 1e-6); },
      {"rms_norm: all tensors must be on one device; x is on cpu, weight on cuda:0"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::layer_norm(x, Tensor(), w_gpu, 1e-5); }, {"x is on cpu, bias on cuda:0"}));
  hfport::RmsNormOptions with_out;
  with_out.out = cuda.tensor({2, 8});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::rms_norm(x, random_tensor(DType::F32, {8}), 1e-6, with_out); },
      {"x is on cpu, out on cuda:0"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::swiglu(x, cuda.tensor({2, 8})); }, {"swiglu:", "gate is on cpu, up on cuda:0"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::gelu(x, hfport::GeluApproximation::None, cuda.tensor({2, 8})); },
      {"gelu:", "out on cuda:0"}));

  const Tensor q = random_tensor(DType::F32, {1, 2, 3, 4});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::rope(q, Tensor(), cuda.tensor({3, 4}), cuda.tensor({3, 4})); },
      {"rope:", "q is on cpu, cos on cuda:0"}));

  const Tensor state = random_tensor(DType::F32, {1, 3, 4});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] {
        hfport::causal_conv1d_update(random_tensor(DType::F32, {1, 3}), state,
                                     cuda.tensor({3, 4}));
      },
      {"causal_conv1d_update:", "x is on cpu, weight on cuda:0"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::causal_conv1d(cuda.tensor({1, 3, 5}), random_tensor(DType::F32, {3, 4})); },
      {"x is on cuda:0, weight on cpu"}));

  const Tensor u = random_tensor(DType::F32, {1, 3, 5});
  const Tensor A = random_tensor(DType::F32, {3, 4});
  hfport::SelectiveScanOptions scan_options;
  scan_options.z = cuda.tensor({1, 3, 5});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::selective_scan(u, u, A, A, A, scan_options); },
      {"selective_scan:", "u is on cpu, z on cuda:0"}));
  hfport::SelectiveStateUpdateOptions update_options;
  update_options.dt_bias = cuda.tensor({3});
  const Tensor step = random_tensor(DType::F32, {1, 3});
  const Tensor bc = random_tensor(DType::F32, {1, 4});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::selective_state_update(state, step, step, A, bc, bc, update_options); },
      {"selective_state_update:", "state is on cpu, dt_bias on cuda:0"}));
}

// All on CUDA, where nothing can run them: a DeviceError saying why (no CUDA in this build, or no
// visible device), never a host read of device memory.
TEST(CudaOpsDevices, CudaTensorsWhereNoDeviceRunsThemAreADeviceError) {
  if (hfport::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible here";
  const std::string why =
      hfport::built_with_cuda() ? "no CUDA device is visible" : "built without CUDA";
  LabelledCuda cuda;
  const Tensor x = cuda.tensor({2, 8});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::rms_norm(x, cuda.tensor({8}), 1e-6); }, {why}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::layer_norm(x, Tensor(), Tensor(), 1e-5); }, {why}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { hfport::silu(x); }, {why}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::rope(cuda.tensor({1, 2, 3, 4}), Tensor(), cuda.tensor({3, 4}),
                         cuda.tensor({3, 4})); },
      {why}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::causal_conv1d(cuda.tensor({1, 3, 5}), cuda.tensor({3, 4})); }, {why}));
  const Tensor u = cuda.tensor({1, 3, 5});
  const Tensor A = cuda.tensor({3, 4});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::selective_scan(u, u, A, A, A); }, {why}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] {
        hfport::selective_state_update(cuda.tensor({1, 3, 4}), cuda.tensor({1, 3}),
                                       cuda.tensor({1, 3}), A, cuda.tensor({1, 4}),
                                       cuda.tensor({1, 4}));
      },
      {why}));
  // The float64 references run on the host in every build.
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::rms_norm_reference(x, cuda.tensor({8}), 1e-6); },
      {"rms_norm_reference: runs on the CPU only", "cuda:0"}));
}

#ifdef HFPORT_WITH_CUDA

// The shape and dtype checks are one function for both devices: on CUDA tensors the message is the
// CPU op's, word for word. They run before the device is touched, so no GPU is needed.
TEST(CudaOpsDevices, CudaTensorsGetTheCpuOpsArgumentMessages) {
  LabelledCuda cuda;
  const Tensor x_host = random_tensor(DType::F32, {2, 8});
  const Tensor w_host = random_tensor(DType::F32, {7});
  const std::string shape_message = "rms_norm: weight must be [hidden] = [8], got [7]";
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rms_norm(x_host, w_host, 1e-6); }, {shape_message}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rms_norm(cuda.tensor({2, 8}), cuda.tensor({7}), 1e-6); }, {shape_message}));

  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::silu(cuda.tensor({4}, DType::I32)); },
      {"silu: x must have dtype F32, F16 or BF16, got I32"}));
  const Tensor A = cuda.tensor({3, 4});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::selective_scan(cuda.tensor({1, 3, 5}), cuda.tensor({1, 3, 6}), A, A, A); },
      {"selective_scan: delta must be [batch, dim, L] = [1, 3, 5], got [1, 3, 6]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::causal_conv1d_update(cuda.tensor({1, 3}), cuda.tensor({1, 3, 2}),
                                     cuda.tensor({3, 4}));
      },
      {"causal_conv1d_update: conv_state must keep S >= width - 1 = 3 columns, got [1, 3, 2]"}));
  hfport::RopeOptions options;
  options.rotary_dim = 6;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::rope(cuda.tensor({1, 2, 3, 4}), Tensor(), cuda.tensor({3, 4}), cuda.tensor({3, 4}),
                     options);
      },
      {"rope: rotary_dim must be even and in [2, head_dim = 4], got 6"}));
}

// ---------------------------------------------------------------------------------------------
// On a GPU.

using hfport_test::download;
using hfport_test::tolerance;
using hfport_test::upload;

class CudaOps : public hfport_test::CudaDeviceTest {};

std::string name(DType dtype) { return std::string(hfport::dtype_name(dtype)); }

// A strided device view: `stored` uploaded, then dims a and b swapped (like torch's transpose).
Tensor upload_swapped(const Tensor& stored, size_t a, size_t b) {
  return swap_dims(upload(stored), a, b);
}

// A strided view's contents as a contiguous host tensor: its whole storage downloaded, then
// viewed with the view's own strides.
Tensor download_view(const Tensor& view, const Tensor& base) {
  const Tensor host_base = download(base);
  return Tensor(host_base.storage(), view.byte_offset(), view.dtype(), view.shape(),
                view.strides())
      .contiguous();
}

TEST_F(CudaOps, RmsNormMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (const Shape& shape : {Shape{2, 7, 67}, Shape{5, 1000}, Shape{300, 9}}) {
      for (bool unit_offset : {false, true}) {
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE(name(dtype) + " " + hfport::shape_to_string(shape) +
                       (unit_offset ? " 1+w" : " w") + (with_residual ? " residual" : ""));
          const Tensor x = random_tensor(dtype, shape);
          const Tensor weight = random_tensor(DType::BF16, {shape.back()}, 0.3, 1.0);
          hfport::RmsNormOptions host_options;
          host_options.add_unit_offset = unit_offset;
          if (with_residual) host_options.residual = random_tensor(dtype, shape);
          const hfport::RmsNormResult want = hfport::rms_norm(x, weight, 1e-5, host_options);

          hfport::RmsNormOptions options;
          options.add_unit_offset = unit_offset;
          if (with_residual) options.residual = upload(host_options.residual);
          options.out = upload(poisoned(dtype, shape));
          const hfport::RmsNormResult got = hfport::rms_norm(upload(x), upload(weight), 1e-5,
                                                             options);
          EXPECT_EQ(got.out.data(), options.out.data()) << "the result is not the given out";
          EXPECT_EQ(got.out.device(), kCuda0);
          EXPECT_LT(rel_l2(download(got.out), want.out), tolerance(dtype));
          if (with_residual) {
            // One addition rounded once, to nearest even, on both sides: bit for bit.
            EXPECT_EQ(rel_l2(download(got.residual_sum), want.residual_sum), 0.0);
          }
        }
      }
    }
  }
}

TEST_F(CudaOps, RmsNormReadsAStridedInputAndWritesInPlace) {
  const Tensor stored = random_tensor(DType::BF16, {301, 19});
  const Tensor x = swap_dims(stored, 0, 1);  // [19, 301], column major
  const Tensor weight = random_tensor(DType::F32, {301}, 0.3, 1.0);
  const Tensor want = hfport::rms_norm(x, weight, 1e-6).out;
  EXPECT_LT(rel_l2(download(hfport::rms_norm(upload_swapped(stored, 0, 1), upload(weight), 1e-6)
                                .out),
                   want),
            hfport_test::kBF16Tolerance);
  hfport::RmsNormOptions in_place;
  const Tensor d_x = upload(x);
  in_place.out = d_x;
  hfport::rms_norm(d_x, upload(weight), 1e-6, in_place);
  EXPECT_LT(rel_l2(download(d_x), want), hfport_test::kBF16Tolerance);
}

TEST_F(CudaOps, LayerNormMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (const Shape& shape : {Shape{37, 67}, Shape{3, 2049}, Shape{4, 250, 5}}) {
      for (bool affine : {false, true}) {
        SCOPED_TRACE(name(dtype) + " " + hfport::shape_to_string(shape) +
                     (affine ? " weight+bias" : ""));
        // Shifted, so that a one-pass variance would lose digits.
        const Tensor x = random_tensor(dtype, shape, 1.0, 3.0);
        const Tensor weight = affine ? random_tensor(DType::F16, {shape.back()}, 0.3, 1.0) : Tensor();
        const Tensor bias = affine ? random_tensor(DType::F32, {shape.back()}, 0.5) : Tensor();
        const Tensor want = hfport::layer_norm(x, weight, bias, 1e-5);
        const Tensor out = upload(poisoned(dtype, shape));
        hfport::layer_norm(upload(x), affine ? upload(weight) : Tensor(),
                           affine ? upload(bias) : Tensor(), 1e-5, out);
        EXPECT_LT(rel_l2(download(out), want), tolerance(dtype));
      }
    }
  }
}

TEST_F(CudaOps, ActivationsMatchTheCpuOps) {
  using hfport::GeluApproximation;
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t n : {int64_t{5}, int64_t{1001}, int64_t{70001}}) {
      SCOPED_TRACE(name(dtype) + " n " + std::to_string(n));
      // gate strided: [n, 2] storage, column 0 of it seen as [n].
      const Tensor stored = random_tensor(dtype, {n, 2}, 2.0);
      const Tensor gate = stored.select(1, 0);
      const Tensor up = random_tensor(dtype, {n});
      const Tensor d_gate = upload(stored).select(1, 0);
      const Tensor d_up = upload(up);
      const Tensor out = upload(poisoned(dtype, {n}));
      hfport::gelu(d_gate, GeluApproximation::None, out);
      EXPECT_LT(rel_l2(download(out), hfport::gelu(gate)), tolerance(dtype)) << "gelu";
      const Tensor out_tanh = upload(poisoned(dtype, {n}));
      hfport::gelu(d_gate, GeluApproximation::Tanh, out_tanh);
      EXPECT_LT(rel_l2(download(out_tanh), hfport::gelu(gate, GeluApproximation::Tanh)),
                tolerance(dtype))
          << "gelu tanh";
      EXPECT_LT(rel_l2(download(hfport::silu(d_gate)), hfport::silu(gate)), tolerance(dtype))
          << "silu";
      const Tensor out_swiglu = upload(poisoned(dtype, {n}));
      hfport::swiglu(d_gate, d_up, out_swiglu);
      EXPECT_LT(rel_l2(download(out_swiglu), hfport::swiglu(gate, up)), tolerance(dtype))
          << "swiglu";
      // In place on up.
      hfport::swiglu(d_gate, d_up, d_up);
      EXPECT_LT(rel_l2(download(d_up), hfport::swiglu(gate, up)), tolerance(dtype))
          << "swiglu in place";
    }
  }
}

struct RopeCase {
  DType dtype;
  hfport::AttentionLayout layout;
  bool interleaved;
  int64_t head_dim, rotary_dim, width;  // width: the table's last dimension
  bool batched_table;
  DType table_dtype;
  bool inplace;
};

void check_rope(const RopeCase& c) {
  SCOPED_TRACE(name(c.dtype) + (c.layout == hfport::AttentionLayout::BHSD ? " bhsd" : " bshd") +
               (c.interleaved ? " interleaved" : " half-split") + " D " +
               std::to_string(c.head_dim) + " R " + std::to_string(c.rotary_dim) + " W " +
               std::to_string(c.width) + " table " + name(c.table_dtype) +
               (c.inplace ? " in place" : ""));
  constexpr int64_t kBatch = 2, kSeq = 7, kQHeads = 5, kKHeads = 3;
  const bool bhsd = c.layout == hfport::AttentionLayout::BHSD;
  // q and k are views with the head and seq dims stored the other way round (unit last stride,
  // as a projection's output reshaped); in place writes through those strides.
  auto stored = [&](int64_t heads) {
    return bhsd ? random_tensor(c.dtype, {kBatch, kSeq, heads, c.head_dim})
                : random_tensor(c.dtype, {kBatch, heads, kSeq, c.head_dim});
  };
  const Tensor q_stored = stored(kQHeads), k_stored = stored(kKHeads);
  const Tensor q = swap_dims(q_stored, 1, 2), k = swap_dims(k_stored, 1, 2);
  const Shape table_shape = c.batched_table ? Shape{kBatch, kSeq, c.width} : Shape{kSeq, c.width};
  const Tensor cos = random_tensor(c.table_dtype, table_shape, 0.7);
  const Tensor sin = random_tensor(c.table_dtype, table_shape, 0.7);
  hfport::RopeOptions options;
  options.interleaved = c.interleaved;
  options.rotary_dim = c.rotary_dim;
  options.layout = c.layout;
  const hfport::RopeResult want = hfport::rope(q, k, cos, sin, options);

  options.inplace = c.inplace;
  const Tensor d_q_stored = upload(q_stored), d_k_stored = upload(k_stored);
  const Tensor d_q = swap_dims(d_q_stored, 1, 2), d_k = swap_dims(d_k_stored, 1, 2);
  const hfport::RopeResult got = hfport::rope(d_q, d_k, upload(cos), upload(sin), options);
  if (c.inplace) {
    EXPECT_EQ(got.q.data(), d_q.data());
    EXPECT_EQ(got.k.data(), d_k.data());
    EXPECT_LT(rel_l2(download_view(d_q, d_q_stored), want.q), tolerance(c.dtype)) << "q";
    EXPECT_LT(rel_l2(download_view(d_k, d_k_stored), want.k), tolerance(c.dtype)) << "k";
  } else {
    EXPECT_LT(rel_l2(download(got.q), want.q), tolerance(c.dtype)) << "q";
    EXPECT_LT(rel_l2(download(got.k), want.k), tolerance(c.dtype)) << "k";
    EXPECT_EQ(rel_l2(download_view(d_q, d_q_stored), q.contiguous()), 0.0) << "q was written";
  }
}

TEST_F(CudaOps, RopeMatchesTheCpuOp) {
  using L = hfport::AttentionLayout;
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (L layout : {L::BHSD, L::BSHD}) {
      for (bool interleaved : {false, true}) {
        for (bool inplace : {false, true}) {
          check_rope({dtype, layout, interleaved, 24, 24, 24, false, DType::F32, inplace});
          check_rope({dtype, layout, interleaved, 26, 10, 5, true, DType::BF16, inplace});
          check_rope({dtype, layout, interleaved, 26, 10, 10, true, dtype, inplace});
        }
      }
    }
  }
}

TEST_F(CudaOps, RopeCopiesAViewWithoutAUnitLastStride) {
  // [B, H, S, D] stored as [B, H, D, S]: the kernel needs a unit stride over D, so q is copied on
  // the device; in place is refused, as on the CPU.
  const Tensor stored = random_tensor(DType::F32, {1, 3, 8, 5});
  const Tensor q = swap_dims(stored, 2, 3);
  const Tensor cos = random_tensor(DType::F32, {5, 8}), sin = random_tensor(DType::F32, {5, 8});
  const Tensor want = hfport::rope(q, Tensor(), cos, sin).q;
  const Tensor d_q = upload_swapped(stored, 2, 3);
  EXPECT_LT(rel_l2(download(hfport::rope(d_q, Tensor(), upload(cos), upload(sin)).q), want),
            hfport_test::kF32Tolerance);
  hfport::RopeOptions inplace;
  inplace.inplace = true;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rope(d_q, Tensor(), upload(cos), upload(sin), inplace); },
      {"rope: inplace needs q with a unit-stride last dimension"}));
}

TEST_F(CudaOps, CausalConv1dMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t width : {int64_t{1}, int64_t{4}}) {
      for (bool silu : {false, true}) {
        constexpr int64_t kBatch = 2, kDim = 37, kLen = 29;
        SCOPED_TRACE(name(dtype) + " width " + std::to_string(width) + (silu ? " silu" : ""));
        // [batch, L, dim] storage seen as [batch, dim, L] (the layout after in_proj).
        const Tensor stored = random_tensor(dtype, {kBatch, kLen, kDim});
        const Tensor x = swap_dims(stored, 1, 2);
        const Tensor weight = random_tensor(DType::BF16, {kDim, width}, 0.5);
        const Tensor bias = silu ? random_tensor(DType::F32, {kDim}, 0.5) : Tensor();
        const auto act = silu ? hfport::ConvActivation::Silu : hfport::ConvActivation::None;
        const Tensor want = hfport::causal_conv1d(x, weight, bias, act);
        const Tensor out = upload(poisoned(dtype, {kBatch, kDim, kLen}));
        hfport::causal_conv1d(upload_swapped(stored, 1, 2), upload(weight),
                              silu ? upload(bias) : Tensor(), act, out);
        EXPECT_LT(rel_l2(download(out), want), tolerance(dtype));
      }
    }
  }
}

TEST_F(CudaOps, CausalConv1dRefusesAnOutputOverX) {
  const Tensor x = upload(random_tensor(DType::F32, {1, 3, 9}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::causal_conv1d(x, upload(random_tensor(DType::F32, {3, 4})), Tensor(),
                              hfport::ConvActivation::None, x);
      },
      {"causal_conv1d: out shares memory with x"}));
}

TEST_F(CudaOps, CausalConv1dUpdateShiftsTheCallersStateInPlace) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (DType state_dtype : {DType::F32, DType::F16}) {
      for (bool one_step : {true, false}) {
        constexpr int64_t kBatch = 3, kDim = 37, kLen = 5, kWidth = 4, kState = 4;
        SCOPED_TRACE(name(dtype) + " state " + name(state_dtype) + (one_step ? " one step" : " L 5"));
        const Tensor x = one_step ? random_tensor(dtype, {kBatch, kDim})
                                  : random_tensor(dtype, {kBatch, kDim, kLen});
        // The state strided: [batch, S, dim] storage seen as [batch, dim, S].
        const Tensor state_stored = random_tensor(state_dtype, {kBatch, kState, kDim});
        const Tensor weight = random_tensor(DType::F32, {kDim, kWidth}, 0.5);
        const Tensor bias = random_tensor(DType::F32, {kDim}, 0.5);
        const Tensor d_state_stored = upload(state_stored);
        const Tensor d_state = swap_dims(d_state_stored, 1, 2);
        const Tensor host_state = swap_dims(state_stored, 1, 2).contiguous().clone();
        const Tensor want = hfport::causal_conv1d_update(x, host_state, weight, bias,
                                                         hfport::ConvActivation::Silu);
        const Tensor got = hfport::causal_conv1d_update(upload(x), d_state, upload(weight),
                                                        upload(bias), hfport::ConvActivation::Silu);
        EXPECT_LT(rel_l2(download(got), want), tolerance(dtype));
        // Shifted copies and stored inputs: exact on both sides, in the caller's own memory.
        EXPECT_EQ(rel_l2(download_view(d_state, d_state_stored), host_state), 0.0);
      }
    }
  }
}

enum class BcLayout { Channel, Time, Grouped };

struct ScanCase {
  int64_t batch, dim, dstate, seqlen;
  BcLayout layout;
  DType dtype;
  bool all_options;
};

void check_scan(const ScanCase& c) {
  SCOPED_TRACE(name(c.dtype) + " batch " + std::to_string(c.batch) + " dim " +
               std::to_string(c.dim) + " N " + std::to_string(c.dstate) + " L " +
               std::to_string(c.seqlen) + " layout " + std::to_string(static_cast<int>(c.layout)) +
               (c.all_options ? " D z bias softplus" : ""));
  constexpr int64_t kGroups = 3;
  // u, z and time-varying B, C strided ([.., L, x] storage), delta contiguous; each host tensor
  // has a device twin with the same strides.
  struct Pair {
    Tensor host, device;
  };
  auto swapped = [](const Tensor& stored, size_t a, size_t b) {
    return Pair{swap_dims(stored, a, b), upload_swapped(stored, a, b)};
  };
  auto plain = [](const Tensor& t) { return Pair{t, upload(t)}; };
  auto bc = [&] {
    switch (c.layout) {
      case BcLayout::Channel: return plain(random_tensor(c.dtype, {c.dim, c.dstate}));
      case BcLayout::Time:
        return swapped(random_tensor(DType::BF16, {c.batch, c.seqlen, c.dstate}), 1, 2);
      default:
        return swapped(random_tensor(c.dtype, {c.batch, kGroups, c.seqlen, c.dstate}), 2, 3);
    }
  };
  const Pair u = swapped(random_tensor(c.dtype, {c.batch, c.seqlen, c.dim}), 1, 2);
  const Pair delta = plain(random_tensor(c.dtype, {c.batch, c.dim, c.seqlen}, 0.5));
  const Pair A = plain(negative_a(c.dim, c.dstate));
  const Pair B = bc(), C = bc();
  hfport::SelectiveScanOptions host, device;
  host.return_last_state = device.return_last_state = true;
  if (c.all_options) {
    const Pair D = plain(random_tensor(DType::BF16, {c.dim}));
    const Pair z = swapped(random_tensor(c.dtype, {c.batch, c.seqlen, c.dim}), 1, 2);
    const Pair bias = plain(random_tensor(DType::F32, {c.dim}, 0.3));
    host.D = D.host;
    device.D = D.device;
    host.z = z.host;
    device.z = z.device;
    host.delta_bias = bias.host;
    device.delta_bias = bias.device;
    host.delta_softplus = device.delta_softplus = true;
  }
  const hfport::SelectiveScanResult want =
      hfport::selective_scan(u.host, delta.host, A.host, B.host, C.host, host);
  device.out = upload(poisoned(c.dtype, {c.batch, c.dim, c.seqlen}));
  const hfport::SelectiveScanResult got =
      hfport::selective_scan(u.device, delta.device, A.device, B.device, C.device, device);
  EXPECT_LT(rel_l2(download(device.out), want.out), tolerance(c.dtype));
  // F32 on both sides; only the inputs' dtype limits it.
  EXPECT_LT(rel_l2(download(got.last_state), want.last_state), tolerance(c.dtype));
}

TEST_F(CudaOps, SelectiveScanMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (BcLayout layout : {BcLayout::Channel, BcLayout::Time, BcLayout::Grouped}) {
      check_scan({1, 6, 3, 7, layout, dtype, true});
      check_scan({2, 39, 16, 70, layout, dtype, true});
      check_scan({3, 18, 37, 33, layout, dtype, false});
    }
  }
}

TEST_F(CudaOps, SelectiveScanRefusesAnOutputOverItsInputs) {
  const Tensor u = upload(random_tensor(DType::F32, {1, 3, 5}));
  const Tensor A = upload(negative_a(3, 4));
  const Tensor B = upload(random_tensor(DType::F32, {3, 4}));
  hfport::SelectiveScanOptions options;
  options.out = u;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::selective_scan(u, upload(random_tensor(DType::F32, {1, 3, 5})), A, B, B, options); },
      {"selective_scan: out shares memory with u"}));
}

TEST_F(CudaOps, SelectiveStateUpdateUpdatesTheCallersStateInPlace) {
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (DType state_dtype : {DType::F32, DType::BF16}) {
      for (int64_t groups : {int64_t{0}, int64_t{3}}) {  // 0: B and C are [batch, N]
        for (int64_t dstate : {int64_t{5}, int64_t{16}, int64_t{40}}) {
          constexpr int64_t kBatch = 3, kDim = 21;
          SCOPED_TRACE(name(dtype) + " state " + name(state_dtype) + " groups " +
                       std::to_string(groups) + " N " + std::to_string(dstate));
          const Tensor x = random_tensor(dtype, {kBatch, kDim});
          const Tensor dt = random_tensor(dtype, {kBatch, kDim}, 0.5);
          const Tensor z = random_tensor(dtype, {kBatch, kDim});
          const Tensor A = negative_a(kDim, dstate);
          const Shape bc = groups ? Shape{kBatch, groups, dstate} : Shape{kBatch, dstate};
          const Tensor B = random_tensor(DType::F32, bc);
          const Tensor C = random_tensor(dtype, bc);
          const Tensor D = random_tensor(DType::F16, {kDim});
          const Tensor dt_bias = random_tensor(DType::F32, {kDim}, 0.3);
          // The state strided: [batch, N, dim] storage seen as [batch, dim, N].
          const Tensor state_stored = random_tensor(state_dtype, {kBatch, dstate, kDim});
          const Tensor d_state_stored = upload(state_stored);
          const Tensor d_state = swap_dims(d_state_stored, 1, 2);
          const Tensor host_state = swap_dims(state_stored, 1, 2).contiguous().clone();
          hfport::SelectiveStateUpdateOptions host;
          host.D = D;
          host.z = z;
          host.dt_bias = dt_bias;
          host.dt_softplus = true;
          const Tensor want = hfport::selective_state_update(host_state, x, dt, A, B, C, host);

          hfport::SelectiveStateUpdateOptions device;
          device.D = upload(D);
          device.z = upload(z);
          device.dt_bias = upload(dt_bias);
          device.dt_softplus = true;
          device.out = upload(poisoned(dtype, {kBatch, kDim}));
          hfport::selective_state_update(d_state, upload(x), upload(dt), upload(A), upload(B),
                                         upload(C), device);
          EXPECT_LT(rel_l2(download(device.out), want), tolerance(dtype));
          EXPECT_LT(rel_l2(download_view(d_state, d_state_stored), host_state),
                    tolerance(state_dtype));
        }
      }
    }
  }
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
