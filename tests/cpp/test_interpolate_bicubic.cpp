// interpolate_bicubic against its float64 reference, both modes (antialias off: Keys' A = -0.75
// with clamped edges; on: PIL's A = -0.5, normalised, stretched when shrinking), growing and
// shrinking, square and oblong, single rows and columns, channels-last strided input, poisoned
// outputs; an unchanged size is the identity, bit for bit; and the errors. Bit-for-bit agreement
// with torch is tests/python/test_ops_vision.py's.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/interpolate.h"

namespace {

using hfport::DType;
using hfport::Tensor;
using namespace hfport_test;

// [in_h, in_w, out_h, out_w]
using Sizes = std::array<int64_t, 4>;

TEST(InterpolateBicubic, MatchesTheFloat64Reference) {
  for (bool antialias : {false, true}) {
    for (const Sizes& s : {Sizes{4, 4, 6, 5}, Sizes{14, 14, 16, 23}, Sizes{16, 16, 7, 5},
                           Sizes{3, 5, 1, 9}, Sizes{1, 1, 4, 3}, Sizes{37, 37, 64, 20},
                           Sizes{9, 2, 9, 7}, Sizes{5, 8, 11, 8}}) {
      const auto [in_h, in_w, out_h, out_w] = s;
      SCOPED_TRACE(std::string(antialias ? "antialias " : "") + std::to_string(in_h) + "x" +
                   std::to_string(in_w) + " -> " + std::to_string(out_h) + "x" +
                   std::to_string(out_w));
      const Tensor x = random_tensor(DType::F32, {2, 5, in_h, in_w});
      const Tensor out = poisoned(DType::F32, {2, 5, out_h, out_w});
      hfport::interpolate_bicubic(x, out_h, out_w, antialias, out);
      EXPECT_LT(rel_l2(out, hfport::interpolate_bicubic_reference(x, out_h, out_w, antialias)),
                kF32Tolerance);
    }
  }
}

TEST(InterpolateBicubic, AlignCornersMatchesTheFloat64Reference) {
  // align_corners=True (CLAP's spectrogram resize along one axis): growing, shrinking, one output.
  for (const Sizes& s : {Sizes{7, 5, 19, 5}, Sizes{6, 9, 6, 17}, Sizes{13, 8, 40, 11},
                         Sizes{4, 4, 1, 9}, Sizes{16, 3, 5, 3}}) {
    const auto [in_h, in_w, out_h, out_w] = s;
    SCOPED_TRACE(std::to_string(in_h) + "x" + std::to_string(in_w) + " -> " +
                 std::to_string(out_h) + "x" + std::to_string(out_w));
    const Tensor x = random_tensor(DType::F32, {2, 3, in_h, in_w});
    const Tensor out = hfport::interpolate_bicubic(x, out_h, out_w, false, Tensor(), true);
    EXPECT_LT(rel_l2(out, hfport::interpolate_bicubic_reference(x, out_h, out_w, false, true)),
              kF32Tolerance);
  }
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::interpolate_bicubic(random_tensor(DType::F32, {1, 1, 4, 4}), 5, 5, true,
                                        Tensor(), true); },
      {"interpolate_bicubic: align_corners goes with antialias off"}));
}

TEST(InterpolateBicubic, ChannelsLastViewOfAPositionTable) {
  // A [7 * 6, 12] table of positions viewed as [1, 12, 7, 6], as the ViT models pass it.
  const Tensor table = random_tensor(DType::F32, {7 * 6, 12});
  const Tensor x(table.storage(), table.byte_offset(), DType::F32, {1, 12, 7, 6},
                 {7 * 6 * 12, 1, 6 * 12, 12});
  for (bool antialias : {false, true}) {
    const Tensor out = hfport::interpolate_bicubic(x, 9, 4, antialias);
    EXPECT_LT(rel_l2(out, hfport::interpolate_bicubic_reference(x, 9, 4, antialias)),
              kF32Tolerance);
  }
}

TEST(InterpolateBicubic, AnUnchangedSizeIsTheIdentity) {
  const Tensor x = random_tensor(DType::F32, {1, 3, 5, 7});
  for (bool antialias : {false, true}) {
    const Tensor out = hfport::interpolate_bicubic(x, 5, 7, antialias);
    EXPECT_EQ(std::memcmp(out.data(), x.data(), x.nbytes()), 0) << (antialias ? "antialias" : "");
  }
}

TEST(InterpolateBicubic, ErrorsNameTheArgumentAndTheExpectation) {
  const Tensor x = random_tensor(DType::F32, {1, 3, 4, 4});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::interpolate_bicubic(x, 0, 5, false); },
      {"interpolate_bicubic: size must be >= 1 in both dimensions, got (0, 5)"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::interpolate_bicubic(random_tensor(DType::F32, {3, 4, 4}), 5, 5, false); },
      {"interpolate_bicubic: x must be [batch, channels, height, width] (4 dimensions), got "
       "[3, 4, 4]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::interpolate_bicubic(random_tensor(DType::BF16, {1, 3, 4, 4}), 5, 5, true); },
      {"interpolate_bicubic: x must have dtype F32", "got BF16"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::interpolate_bicubic(x, 5, 5, false, poisoned(DType::F32, {1, 3, 5, 4})); },
      {"interpolate_bicubic: out must be the result's shape = [1, 3, 5, 5], got [1, 3, 5, 4]"}));
}

}  // namespace
