// The image encoders' GPU pieces against their host references: patch_embed given CUDA tensors
// (a strided gather and a GEMM, ops/cuda/patch_embed.h) against the CPU op, at sizes that do not
// tile, with strided (channels-last) pixels, 2-D and 3-D, f32 and bf16; and the element-wise
// kernels of kernels/cuda/vision_steps.h against the plain formulas they implement (token
// assembly with and without positions, mask and prefix rows, the layer-scaled add and the token
// mean bit for bit, tanh to an ulp or so). Skipped without a visible device; compiled only with
// CUDA.
#ifdef HFPORT_WITH_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/device_copy.h"
#include "core/tensor.h"
#include "cuda_test_support.h"
#include "kernel_test_data.h"
#include "kernels/cuda/vision_steps.h"
#include "ops/cuda/device_tensor.h"
#include "ops/patch_embed.h"

namespace {

using hfport::DType;
using hfport::PatchSize;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::download;
using hfport_test::rel_l2;
using hfport_test::random_tensor;
using hfport_test::swap_dims;
using hfport_test::upload;

const hfport::Device kCuda0{hfport::DeviceType::CUDA, 0};

class CudaVision : public hfport_test::CudaDeviceTest {};

void synchronize() { ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess); }

void check_token_assembly(int64_t prefix);

TEST_F(CudaVision, PatchEmbedMatchesTheCpuOp) {
  struct Case {
    Shape pixels, weight;
    PatchSize patch;
    bool channels_last;
  };
  const std::vector<Case> cases = {
      {{2, 3, 37, 29}, {16, 3, 8, 8}, {8, 8, 1}, false},   // floored: 4 x 3 patches
      {{1, 3, 14, 21}, {5, 3, 7, 7}, {7, 7, 1}, true},     // strided pixels
      {{2, 3, 5, 16, 16}, {12, 3, 2, 8, 8}, {8, 8, 2}, false},  // tubelets; the 5th frame unread
  };
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " +
                   hfport::shape_to_string(c.pixels) + (c.channels_last ? " channels last" : ""));
      Tensor pixels_host = random_tensor(dtype, c.pixels);
      Tensor pixels = upload(pixels_host);
      if (c.channels_last) {
        // [B, W, H, C] stored, seen as [B, C, H, W]: channels innermost, rows and columns
        // swapped in memory too; the same view of the same bytes on both devices.
        const Tensor stored =
            random_tensor(dtype, {c.pixels[0], c.pixels[3], c.pixels[2], c.pixels[1]});
        pixels_host = swap_dims(stored, 1, 3);
        pixels = swap_dims(upload(stored), 1, 3);
      }
      const Tensor weight = random_tensor(DType::F32, c.weight, 0.2);
      const Tensor bias = random_tensor(DType::F32, {c.weight[0]});
      const Tensor want = hfport::patch_embed(pixels_host, weight, bias, c.patch);
      const Tensor got = hfport::patch_embed(pixels, upload(weight), upload(bias), c.patch);
      EXPECT_EQ(got.device(), kCuda0);
      EXPECT_EQ(got.dtype(), dtype);
      EXPECT_LT(rel_l2(download(got), want), hfport_test::tolerance(dtype));
    }
  }
}

TEST_F(CudaVision, TokenAssemblyIsThePlainFormula) {
  // prefix 3: a class token and registers; prefix 0 (no prefix rows at all): VideoMAE's tubelets
  // plus its position table.
  for (const int64_t prefix : {int64_t{3}, int64_t{0}}) {
    SCOPED_TRACE("prefix " + std::to_string(prefix));
    check_token_assembly(prefix);
  }
}

void check_token_assembly(int64_t prefix) {
  const int64_t batch = 2, count = 7, hidden = 13;
  const Tensor prefix_rows = random_tensor(DType::F32, {std::max<int64_t>(prefix, 1), hidden});
  const Tensor patches = random_tensor(DType::F32, {batch, count, hidden});
  const Tensor positions = random_tensor(DType::F32, {count, hidden});
  const Tensor mask_token = random_tensor(DType::F32, {hidden});
  Tensor mask = Tensor::empty(DType::U8, {batch, count});
  for (int64_t i = 0; i < batch * count; ++i) mask.data_as<uint8_t>()[i] = (i * 5 + 1) % 3 == 0;
  const Tensor d_prefix = upload(prefix_rows), d_patches = upload(patches),
               d_positions = upload(positions), d_token = upload(mask_token),
               d_mask = upload(mask);
  for (bool with_positions : {false, true}) {
    for (bool with_mask : {false, true}) {
      SCOPED_TRACE(std::string(with_positions ? "positions" : "no positions") +
                   (with_mask ? ", mask" : ""));
      const Tensor out = Tensor::empty(DType::F32, {batch, prefix + count, hidden}, kCuda0);
      hfport::cuda::VisionTokensParams p;
      p.batch = batch;
      p.prefix = prefix;
      p.count = count;
      p.hidden = hidden;
      p.prefix_rows = prefix > 0 ? d_prefix.data_as<float>() : nullptr;
      p.patches = d_patches.data_as<float>();
      p.positions = with_positions ? d_positions.data_as<float>() : nullptr;
      p.mask = with_mask ? d_mask.data_as<uint8_t>() : nullptr;
      p.mask_token = with_mask ? d_token.data_as<float>() : nullptr;
      p.out = out.data_as<float>();
      hfport::cuda::vision_tokens(p, hfport::cuda::op_stream());
      synchronize();
      const Tensor got = download(out);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t t = 0; t < prefix + count; ++t) {
          for (int64_t c = 0; c < hidden; ++c) {
            float want = 0.0f;
            if (t < prefix) {
              want = prefix_rows.data_as<float>()[t * hidden + c];
            } else {
              const int64_t q = t - prefix;
              const bool masked = with_mask && mask.data_as<uint8_t>()[b * count + q] != 0;
              want = masked ? mask_token.data_as<float>()[c]
                            : patches.data_as<float>()[(b * count + q) * hidden + c];
              if (with_positions) want += positions.data_as<float>()[q * hidden + c];
            }
            ASSERT_EQ(got.data_as<float>()[(b * (prefix + count) + t) * hidden + c], want)
                << b << " " << t << " " << c;
          }
        }
      }
    }
  }
}

TEST_F(CudaVision, ScaleAddTokenMeanAndTanhAreThePlainFormulas) {
  const int64_t batch = 3, seq = 11, hidden = 37, skip = 4;
  const Tensor a = random_tensor(DType::F32, {batch, seq, hidden});
  const Tensor scale = random_tensor(DType::F32, {hidden}, 0.3, 1.0);
  const Tensor residual = random_tensor(DType::F32, {batch, seq, hidden});
  const Tensor d_a = upload(a), d_scale = upload(scale), d_residual = upload(residual);
  hfport::cuda::ScaleAddParams sa;
  sa.rows = batch * seq;
  sa.cols = hidden;
  sa.a = d_a.data_as<float>();
  sa.scale = d_scale.data_as<float>();
  sa.residual = d_residual.data_as<float>();
  hfport::cuda::scale_add_inplace(sa, hfport::cuda::op_stream());
  synchronize();
  const Tensor scaled = download(d_a);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float product = a.data_as<float>()[i] * scale.data_as<float>()[i % hidden];
    ASSERT_EQ(scaled.data_as<float>()[i], product + residual.data_as<float>()[i]) << i;
  }

  // The mean into the second half of [batch, 2 * hidden] rows, as the DINOv2 classifier reads it.
  const Tensor out = Tensor::zeros(DType::F32, {batch, 2 * hidden});
  const Tensor d_out = upload(out);
  hfport::cuda::TokenMeanParams tm;
  tm.batch = batch;
  tm.seq = seq;
  tm.hidden = hidden;
  tm.skip = skip;
  tm.out_row_stride = 2 * hidden;
  tm.x = d_residual.data_as<float>();
  tm.out = d_out.data_as<float>() + hidden;
  hfport::cuda::token_mean(tm, hfport::cuda::op_stream());
  synchronize();
  const Tensor mean = download(d_out);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < hidden; ++c) {
      double sum = 0.0;
      for (int64_t t = skip; t < seq; ++t) sum += residual.data_as<float>()[(b * seq + t) * hidden + c];
      ASSERT_EQ(mean.data_as<float>()[b * 2 * hidden + c], 0.0f);
      ASSERT_EQ(mean.data_as<float>()[b * 2 * hidden + hidden + c],
                static_cast<float>(sum / static_cast<double>(seq - skip)));
    }
  }

  const Tensor d_t = upload(a);
  hfport::cuda::tanh_inplace(d_t.data_as<float>(), d_t.numel(), hfport::cuda::op_stream());
  synchronize();
  const Tensor t = download(d_t);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float want = std::tanh(a.data_as<float>()[i]);
    ASSERT_NEAR(t.data_as<float>()[i], want, 4e-7f * (1.0f + std::fabs(want))) << i;
  }
}

}  // namespace

#endif  // HFPORT_WITH_CUDA
