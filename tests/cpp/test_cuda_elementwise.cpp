// The CUDA copy and element-wise steps the ops and models share (core/cuda/convert,
// ops/cuda/device_tensor, kernels/cuda/elementwise) against host computations: strided gathers and scatters with casts,
// the embedding lookup, the residual add, row masking and the fused swiglu halves. Fresh random
// inputs at odd sizes, outputs poisoned first. Skips without a visible GPU; empty without CUDA.
#include <gtest/gtest.h>

#ifdef HFPORT_WITH_CUDA

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/cast.h"
#include "core/device_copy.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "cuda_test_support.h"
#include "kernel_test_data.h"
#include "kernels/cuda/elementwise.h"
#include "ops/cuda/device_tensor.h"

namespace {

using hfport::Device;
using hfport::DeviceType;
using hfport::DType;
using hfport::Tensor;
using hfport_test::poisoned;
using hfport_test::random_tensor;
using hfport_test::swap_dims;

const Device kGpu{DeviceType::CUDA, 0};

class CudaElementwise : public hfport_test::CudaDeviceTest {};

Tensor host(const Tensor& t) { return hfport::to_device(t, Device{}); }

// Every element of a equals b's (compared as float64: exact for these copies and casts).
void expect_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_EQ(hfport::load_as_f64(a.data(), a.dtype(), i), hfport::load_as_f64(b.data(), b.dtype(), i))
        << "element " << i;
  }
}

TEST_F(CudaElementwise, ContiguousAsGathersAndCasts) {
  for (DType from : {DType::F32, DType::BF16, DType::F16, DType::F64}) {
    for (DType to : {DType::F32, DType::BF16, DType::F16, DType::F64}) {
      SCOPED_TRACE(std::string(hfport::dtype_name(from)) + " -> " + std::string(hfport::dtype_name(to)));
      const Tensor src = random_tensor(from, {5, 7, 3});
      const Tensor transposed = swap_dims(hfport::to_device(src, kGpu), 0, 2);  // [3, 7, 5] strided
      const Tensor got = host(hfport::cuda::contiguous_as("test", "x", transposed, to));
      const Tensor want = hfport::cast(swap_dims(src, 0, 2).contiguous(), to);
      expect_equal(got, want);
    }
  }
}

// The contiguous bf16 -> f32 widening goes to cast.h's vectorised kernel; it must agree too, at a
// size that leaves a tail after the 4-wide groups.
TEST_F(CudaElementwise, ContiguousBf16ToF32TakesTheVectorKernel) {
  const Tensor src = random_tensor(DType::BF16, {3, 7, 5});
  const Tensor got = host(hfport::cuda::contiguous_as("test", "x", hfport::to_device(src, kGpu), DType::F32));
  expect_equal(got, hfport::cast(src, DType::F32));
}

TEST_F(CudaElementwise, CopyIntoAStridedDestination) {
  const Tensor src = random_tensor(DType::F32, {4, 9});
  Tensor big = hfport::to_device(poisoned(DType::BF16, {4, 13}), kGpu);
  hfport::cuda::copy_into("test", hfport::to_device(src, kGpu), big.slice(1, 2, 11));
  const Tensor back = host(big);
  for (int64_t r = 0; r < 4; ++r) {
    for (int64_t c = 0; c < 13; ++c) {
      const double v = hfport::load_as_f64(back.data(), DType::BF16, r * 13 + c);
      if (c < 2 || c >= 11) {
        EXPECT_TRUE(std::isnan(v)) << "wrote outside the view at " << r << ", " << c;
      } else {
        const float want = hfport::bf16_to_f32(hfport::f32_to_bf16(src.data_as<float>()[r * 9 + c - 2]));
        EXPECT_EQ(v, want);
      }
    }
  }
}

TEST_F(CudaElementwise, EmbeddingAddMaskAndSwiglu) {
  const int64_t rows = 11, hidden = 13, count = 7;
  const Tensor table = random_tensor(DType::BF16, {rows, hidden});
  Tensor ids = Tensor::empty(DType::I64, {count});
  for (int64_t i = 0; i < count; ++i) ids.data_as<int64_t>()[i] = (i * 5 + 3) % rows;
  const Tensor d_table = hfport::to_device(table, kGpu), d_ids = hfport::to_device(ids, kGpu);
  Tensor d_out = hfport::to_device(poisoned(DType::BF16, {count, hidden}), kGpu);
  hfport::cuda::embedding({count, hidden * 2, d_table.data(), d_ids.data_as<int64_t>(), d_out.data()},
                          hfport::cuda::op_stream());
  const Tensor out = host(d_out);
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t j = 0; j < hidden; ++j) {
      ASSERT_EQ(out.data_as<uint16_t>()[i * hidden + j],
                table.data_as<uint16_t>()[ids.data_as<int64_t>()[i] * hidden + j]);
    }
  }

  const Tensor a = random_tensor(DType::F32, {count, hidden}), b = random_tensor(DType::F32, {count, hidden});
  Tensor d_a = hfport::to_device(a, kGpu);
  const Tensor d_b = hfport::to_device(b, kGpu);
  hfport::cuda::add_inplace({a.numel(), DType::F32, d_a.data(), d_b.data()}, hfport::cuda::op_stream());
  std::vector<uint8_t> keep = {1, 0, 1, 1, 0, 0, 1};
  Tensor keep_t = Tensor::empty(DType::U8, {count});
  for (int64_t i = 0; i < count; ++i) keep_t.data_as<uint8_t>()[i] = keep[i];
  const Tensor d_keep = hfport::to_device(keep_t, kGpu);
  hfport::cuda::mask_rows({count, hidden * 4, d_a.data(), d_keep.data_as<uint8_t>()},
                          hfport::cuda::op_stream());
  const Tensor sum = host(d_a);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float want = keep[i / hidden] ? a.data_as<float>()[i] + b.data_as<float>()[i] : 0.0f;
    ASSERT_EQ(sum.data_as<float>()[i], want) << "element " << i;
  }

  const Tensor gate_up = random_tensor(DType::F32, {count, 2 * hidden});
  const Tensor d_gate_up = hfport::to_device(gate_up, kGpu);
  Tensor d_act = hfport::to_device(poisoned(DType::F32, {count, hidden}), kGpu);
  hfport::cuda::swiglu_halves({count, hidden, DType::F32, d_gate_up.data(), d_act.data()},
                              hfport::cuda::op_stream());
  const Tensor act = host(d_act);
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t i = 0; i < hidden; ++i) {
      const double g = gate_up.data_as<float>()[r * 2 * hidden + i];
      const double u = gate_up.data_as<float>()[r * 2 * hidden + hidden + i];
      const double want = g / (1.0 + std::exp(-g)) * u;
      ASSERT_NEAR(act.data_as<float>()[r * hidden + i], want, 1e-5 * (1.0 + std::fabs(want)));
    }
  }
}

}  // namespace

#endif  // HFPORT_WITH_CUDA
