// RWKV-4's WKV against its float64 reference (the sums written out, no max tracking), on random
// inputs: channel counts that leave a partial 64-channel block, f32/f16/bf16, strided k, an
// incoming state, masks, large keys (where the sums themselves would overflow float32), chained
// one-step updates, and poisoned outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/rwkv_wkv.h"

namespace {

using hfport::DType;
using hfport::Tensor;
using namespace hfport_test;

struct WkvCase {
  int64_t batch, seqlen, channels;
  DType dtype;
};

struct WkvInputs {
  Tensor w, u, k, v;
  hfport::RwkvWkvOptions options;
};

WkvInputs make_inputs(const WkvCase& c, double k_scale = 1.0) {
  WkvInputs in;
  in.w = random_tensor(DType::F32, {c.channels}, 1.0, -1.0);  // decays exp(-exp(w)) of 0.2 .. 0.9
  in.u = random_tensor(DType::F32, {c.channels}, 0.5);
  in.k = random_tensor(c.dtype, {c.batch, c.seqlen, c.channels}, k_scale);
  in.v = random_tensor(c.dtype, {c.batch, c.seqlen, c.channels});
  in.options.out = poisoned(c.dtype, {c.batch, c.seqlen, c.channels});
  return in;
}

double tolerance(DType dtype) { return dtype == DType::F32 ? kF32Tolerance : kBF16Tolerance; }

void expect_matches(const WkvInputs& in, double tol) {
  const auto got = hfport::rwkv_wkv(in.w, in.u, in.k, in.v, in.options);
  const auto want = hfport::rwkv_wkv_reference(in.w, in.u, in.k, in.v, in.options);
  EXPECT_LT(rel_l2(got.out, want.out), tol);
  EXPECT_LT(rel_l2(got.state.num, want.state.num), tol);
  EXPECT_LT(rel_l2(got.state.den, want.state.den), tol);
  EXPECT_LT(rel_l2(got.state.max, want.state.max), tol);
}

TEST(RwkvWkv, MatchesFloat64Reference) {
  const WkvCase cases[] = {
      {1, 1, 1, DType::F32},   {2, 17, 75, DType::F32},  {1, 64, 130, DType::F32},
      {3, 9, 33, DType::BF16}, {2, 12, 70, DType::F16},
  };
  for (const WkvCase& c : cases) {
    SCOPED_TRACE("batch " + std::to_string(c.batch) + " L " + std::to_string(c.seqlen) + " C " +
                 std::to_string(c.channels) + " " + std::string(hfport::dtype_name(c.dtype)));
    expect_matches(make_inputs(c), tolerance(c.dtype));
  }
}

TEST(RwkvWkv, LargeKeysStayFinite) {
  // Keys of up to ~120: e^k overflows float32 (above 88), the max-tracking state does not.
  WkvInputs in = make_inputs({2, 20, 40, DType::F32}, 40.0);
  const auto got = hfport::rwkv_wkv(in.w, in.u, in.k, in.v, in.options);
  for (int64_t i = 0; i < got.out.numel(); ++i) ASSERT_TRUE(std::isfinite(got.out.data_as<float>()[i]));
  expect_matches(in, kF32Tolerance);
}

TEST(RwkvWkv, StridedKeysStateAndMask) {
  const int64_t batch = 2, seqlen = 11, channels = 70;
  WkvInputs in = make_inputs({batch, seqlen, channels, DType::F32});
  in.k = swap_dims(random_tensor(DType::F32, {batch, channels, seqlen}), 1, 2);
  ASSERT_FALSE(in.k.is_contiguous());
  in.options.state = {random_tensor(DType::F32, {batch, channels}, 0.5, 1.0),
                      random_tensor(DType::F32, {batch, channels}, 0.1, 1.0),
                      random_tensor(DType::F32, {batch, channels})};
  Tensor mask = Tensor::empty(DType::I64, {batch, seqlen});
  for (int64_t i = 0; i < batch * seqlen; ++i) mask.data_as<int64_t>()[i] = (i % 4 == 1) ? 0 : 1;
  in.options.mask = mask;
  expect_matches(in, kF32Tolerance);
  // A masked step leaves the state alone: masking the last step gives the state after L - 1.
  hfport::RwkvWkvOptions cut = in.options;
  cut.mask = Tensor();
  cut.out = Tensor();
  Tensor last_off = Tensor::empty(DType::U8, {batch, seqlen});
  for (int64_t i = 0; i < batch * seqlen; ++i) last_off.data_as<uint8_t>()[i] = (i % seqlen) != seqlen - 1;
  hfport::RwkvWkvOptions skip = cut;
  skip.mask = last_off;
  const auto skipped = hfport::rwkv_wkv(in.w, in.u, in.k, in.v, skip);
  const auto shorter = hfport::rwkv_wkv(in.w, in.u, in.k.slice(1, 0, seqlen - 1),
                                        in.v.slice(1, 0, seqlen - 1), cut);
  EXPECT_EQ(rel_l2(skipped.state.num, shorter.state.num), 0.0);
  EXPECT_EQ(rel_l2(skipped.state.max, shorter.state.max), 0.0);
  EXPECT_EQ(skipped.out.data_as<float>()[(seqlen - 1) * channels], 0.0f);  // batch 0, last step
}

TEST(RwkvWkvUpdate, ChainedStepsEqualOneCall) {
  const int64_t batch = 2, seqlen = 13, channels = 90;
  WkvInputs in = make_inputs({batch, seqlen, channels, DType::F32});
  in.options.out = Tensor();
  const auto whole = hfport::rwkv_wkv(in.w, in.u, in.k, in.v, in.options);
  // Start from the empty state the scan starts from, taken from a zero-length call.
  auto start = hfport::rwkv_wkv(in.w, in.u, in.k.slice(1, 0, 0), in.v.slice(1, 0, 0));
  const hfport::RwkvWkvState state = start.state;
  Tensor steps = Tensor::empty(DType::F32, {batch, seqlen, channels});
  for (int64_t t = 0; t < seqlen; ++t) {
    const Tensor y = hfport::rwkv_wkv_update(state, in.w, in.u, in.k.select(1, t), in.v.select(1, t));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t c = 0; c < channels; ++c) {
        steps.data_as<float>()[(b * seqlen + t) * channels + c] = y.data_as<float>()[b * channels + c];
      }
    }
  }
  EXPECT_EQ(rel_l2(steps, whole.out), 0.0);  // the same float32 operations in the same order
  EXPECT_EQ(rel_l2(state.num, whole.state.num), 0.0);
  EXPECT_EQ(rel_l2(state.max, whole.state.max), 0.0);
}

TEST(RwkvWkv, ErrorsNameTheArgumentAndTheExpectation) {
  const WkvInputs in = make_inputs({1, 4, 6, DType::F32});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rwkv_wkv(in.w.slice(0, 0, 5), in.u, in.k, in.v); },
      {"rwkv_wkv: w must be [C] = [6], got [5]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rwkv_wkv(in.w, in.u, in.k, in.v.slice(1, 0, 3)); },
      {"rwkv_wkv: v must be [batch, L, C] = [1, 4, 6], got [1, 3, 6]"}));
  hfport::RwkvWkvOptions partial;
  partial.state.num = Tensor::zeros(DType::F32, {1, 6});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rwkv_wkv(in.w, in.u, in.k, in.v, partial); },
      {"rwkv_wkv: the state needs num, den and max together, got 1 of the three"}));
  hfport::RwkvWkvOptions bad_mask;
  bad_mask.mask = Tensor::zeros(DType::I64, {1, 4});
  bad_mask.mask.data_as<int64_t>()[2] = 3;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rwkv_wkv(in.w, in.u, in.k, in.v, bad_mask); },
      {"rwkv_wkv: mask must hold 0 and 1 only, got 3 at [0, 2]"}));
  const hfport::RwkvWkvState half{Tensor::zeros(DType::F32, {1, 6}),
                                  Tensor::zeros(DType::BF16, {1, 6}),
                                  Tensor::zeros(DType::F32, {1, 6})};
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::rwkv_wkv_update(half, in.w, in.u, in.k.select(1, 0), in.v.select(1, 0)); },
      {"rwkv_wkv_update: state den is updated in place and must be a contiguous F32 tensor, "
       "got BF16"}));
}

}  // namespace
