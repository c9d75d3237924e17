// patch_embed (unfold + GEMM) against its float64 reference: f32, f16 and bf16 pixels, square and
// oblong patches, tubelets of frames (3-D), images that do not tile (the remainder is not read), one channel, channels-last
// strided pixels, no bias, poisoned outputs; and the errors, each naming the argument, what was
// expected and what was found.
#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/patch_embed.h"

namespace {

using hfport::DType;
using hfport::PatchSize;
using hfport::Tensor;
using namespace hfport_test;

// [batch, channels, height, width, patch_h, patch_w, hidden]
using Case = std::array<int64_t, 7>;

TEST(PatchEmbed, MatchesTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (const Case& c : {Case{2, 3, 32, 32, 8, 8, 32}, Case{1, 3, 35, 41, 8, 8, 17},
                          Case{3, 1, 14, 28, 7, 7, 5}, Case{2, 2, 12, 10, 4, 5, 9},
                          Case{1, 3, 16, 16, 16, 16, 48}}) {
      const auto [batch, channels, height, width, ph, pw, hidden] = c;
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " pixels " +
                   hfport::shape_to_string({batch, channels, height, width}) + " patch " +
                   std::to_string(ph) + "x" + std::to_string(pw) + " hidden " +
                   std::to_string(hidden));
      const Tensor pixels = random_tensor(dtype, {batch, channels, height, width});
      const Tensor weight = random_tensor(DType::F32, {hidden, channels, ph, pw}, 0.2);
      const Tensor bias = random_tensor(DType::F32, {hidden});
      const Tensor out = poisoned(dtype, {batch, (height / ph) * (width / pw), hidden});
      hfport::patch_embed(pixels, weight, bias, PatchSize{ph, pw}, out);
      const Tensor ref = hfport::patch_embed_reference(pixels, weight, bias, PatchSize{ph, pw});
      EXPECT_LT(rel_l2(out, ref), tolerance(dtype));
    }
  }
}

// [batch, channels, frames, height, width, patch_t, patch_h, patch_w, hidden]
using VideoCase = std::array<int64_t, 9>;

TEST(PatchEmbed, TubeletsOfFramesMatchTheFloat64Reference) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (const VideoCase& c : {VideoCase{2, 3, 4, 16, 16, 2, 8, 8, 12},
                               VideoCase{1, 2, 5, 9, 13, 2, 4, 4, 7},  // frames, rows, columns left
                               VideoCase{1, 1, 3, 6, 6, 3, 3, 2, 5}}) {
      const auto [batch, channels, frames, height, width, pt, ph, pw, hidden] = c;
      SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " video " +
                   hfport::shape_to_string({batch, channels, frames, height, width}));
      const Tensor pixels = random_tensor(dtype, {batch, channels, frames, height, width});
      const Tensor weight = random_tensor(DType::F32, {hidden, channels, pt, ph, pw}, 0.2);
      const Tensor bias = random_tensor(DType::F32, {hidden});
      const PatchSize patch{ph, pw, pt};
      const int64_t patches = (frames / pt) * (height / ph) * (width / pw);
      const Tensor out = poisoned(dtype, {batch, patches, hidden});
      hfport::patch_embed(pixels, weight, bias, patch, out);
      EXPECT_LT(rel_l2(out, hfport::patch_embed_reference(pixels, weight, bias, patch)),
                tolerance(dtype));
    }
  }
  // [batch, frames, channels, H, W] (transformers' video layout) read as NCTHW without a copy.
  const Tensor btchw = random_tensor(DType::F32, {2, 4, 3, 8, 8});
  const Tensor pixels(btchw.storage(), btchw.byte_offset(), DType::F32, {2, 3, 4, 8, 8},
                      {4 * 3 * 64, 64, 3 * 64, 8, 1});
  const Tensor weight = random_tensor(DType::F32, {6, 3, 2, 4, 4}, 0.2);
  const Tensor out = hfport::patch_embed(pixels, weight, Tensor(), PatchSize{4, 4, 2});
  EXPECT_EQ(out.shape(), (hfport::Shape{2, 8, 6}));
  EXPECT_LT(rel_l2(out, hfport::patch_embed_reference(pixels, weight, Tensor(), {4, 4, 2})),
            kF32Tolerance);
}

TEST(PatchEmbed, ChannelsLastPixelsWithoutBias) {
  // [2, 3, 24, 16] viewed from a [2, 24, 16, 3] buffer (torch's channels_last memory format).
  const Tensor nhwc = random_tensor(DType::F32, {2, 24, 16, 3});
  const Tensor pixels(nhwc.storage(), nhwc.byte_offset(), DType::F32, {2, 3, 24, 16},
                      {24 * 16 * 3, 1, 16 * 3, 3});
  const Tensor weight = random_tensor(DType::F32, {10, 3, 8, 8}, 0.2);
  const Tensor out = hfport::patch_embed(pixels, weight, Tensor(), PatchSize{8, 8});
  EXPECT_EQ(out.shape(), (hfport::Shape{2, 6, 10}));
  EXPECT_LT(rel_l2(out, hfport::patch_embed_reference(pixels, weight, Tensor(), PatchSize{8, 8})),
            kF32Tolerance);
}

TEST(PatchEmbed, ThePixelsPastTheLastWholePatchAreNotRead) {
  // NaN in the remainder rows and columns must not reach the output.
  Tensor pixels = random_tensor(DType::F32, {1, 2, 11, 13});
  float* data = pixels.data_as<float>();
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t y = 0; y < 11; ++y) {
      for (int64_t x = 0; x < 13; ++x) {
        if (y >= 8 || x >= 12) data[(c * 11 + y) * 13 + x] = std::numeric_limits<float>::quiet_NaN();
      }
    }
  }
  const Tensor weight = random_tensor(DType::F32, {4, 2, 4, 4});
  const Tensor out = hfport::patch_embed(pixels, weight, Tensor(), PatchSize{4, 4});
  EXPECT_EQ(out.shape(), (hfport::Shape{1, 6, 4}));
  EXPECT_LT(rel_l2(out, hfport::patch_embed_reference(pixels, weight, Tensor(), PatchSize{4, 4})),
            kF32Tolerance);
}

TEST(PatchEmbed, ErrorsNameTheArgumentAndTheExpectation) {
  const Tensor pixels = random_tensor(DType::F32, {1, 3, 16, 16});
  const Tensor weight = random_tensor(DType::F32, {8, 3, 8, 8});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(random_tensor(DType::F32, {1, 4, 16, 16}), weight, Tensor(), {8, 8}); },
      {"patch_embed: pixels must be [batch, channels, height, width] with the weight's 3 channels, "
       "got [1, 4, 16, 16]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(random_tensor(DType::F32, {1, 3, 16, 7}), weight, Tensor(), {8, 8}); },
      {"patch_embed: pixels must hold at least one patch (8x8), got [1, 3, 16, 7]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(random_tensor(DType::F32, {3, 16, 16}), weight, Tensor(), {8, 8}); },
      {"patch_embed: pixels must be [batch, channels, height, width] or [batch, channels, "
       "frames, height, width], got [3, 16, 16]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(pixels, weight, Tensor(), {16, 16}); },
      {"patch_embed: weight must be [hidden, channels, patch_h, patch_w] = [8, 3, 16, 16], got "
       "[8, 3, 8, 8]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(pixels, weight, random_tensor(DType::F32, {9}), {8, 8}); },
      {"patch_embed: bias must be [hidden] = [8], got [9]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(pixels, weight, Tensor(), {0, 8}); },
      {"patch_embed: patch must be >= 1 in every dimension, got 0x8"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(random_tensor(DType::F64, {1, 3, 16, 16}), weight, Tensor(), {8, 8}); },
      {"patch_embed: pixels must have dtype F32, F16 or BF16, got F64"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::patch_embed(pixels, weight, Tensor(), {8, 8, 2}); },
      {"patch_embed: a patch of 2 frames needs pixels [batch, channels, frames, height, width], "
       "got [1, 3, 16, 16]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::patch_embed(random_tensor(DType::F32, {1, 3, 4, 16, 16}), weight, Tensor(), {8, 8, 2});
      },
      {"patch_embed: weight must be [hidden, channels, patch_t, patch_h, patch_w] (5 dimensions), "
       "got [8, 3, 8, 8]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::patch_embed(random_tensor(DType::F32, {1, 3, 1, 16, 16}),
                            random_tensor(DType::F32, {8, 3, 2, 8, 8}), Tensor(), {8, 8, 2});
      },
      {"patch_embed: pixels must hold at least one patch (2x8x8, frames x height x width), got "
       "[1, 3, 1, 16, 16]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::patch_embed(pixels, weight, Tensor(), {8, 8}, poisoned(DType::F32, {1, 4, 9}));
      },
      {"patch_embed: out must be the result's shape = [1, 4, 8], got [1, 4, 9]"}));
}

}  // namespace
