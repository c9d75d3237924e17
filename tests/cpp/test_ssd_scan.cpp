// Mamba-2's SSD scan, its one-step update and the gated RMSNorm against their float64
// references, on random inputs: chunk sizes that do not divide the length (and ones larger than
// it), head dims that are neither powers of two nor multiples of the 16-float tile, one and
// several B/C groups, f32/f16/bf16, strided inputs, initial states, and poisoned outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/norm.h"
#include "ops/ssd_scan.h"

namespace {

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using namespace hfport_test;

struct SsdCase {
  int64_t batch, seqlen, heads, head_dim, dstate, groups, chunk;
  DType dtype;
};

std::string describe(const SsdCase& c) {
  return "batch " + std::to_string(c.batch) + " L " + std::to_string(c.seqlen) + " H " +
         std::to_string(c.heads) + " P " + std::to_string(c.head_dim) + " N " +
         std::to_string(c.dstate) + " G " + std::to_string(c.groups) + " chunk " +
         std::to_string(c.chunk) + " " + std::string(hfport::dtype_name(c.dtype));
}

struct SsdInputs {
  Tensor x, dt, A, B, C;
  hfport::SsdScanOptions options;
};

// A = -exp(N(0, 0.5)) and dt around softplus(-1): decays like a trained model's, so that a chunk's
// cumulative dt A reaches a few units, not thousands.
SsdInputs make_inputs(const SsdCase& c) {
  SsdInputs in;
  in.x = random_tensor(c.dtype, {c.batch, c.seqlen, c.heads, c.head_dim});
  in.dt = random_tensor(c.dtype, {c.batch, c.seqlen, c.heads}, 0.5, -1.0);
  const Tensor log_a = random_tensor(DType::F64, {c.heads}, 0.5);
  in.A = Tensor::empty(DType::F32, {c.heads});
  for (int64_t h = 0; h < c.heads; ++h) {
    in.A.data_as<float>()[h] = static_cast<float>(-std::exp(log_a.data_as<double>()[h]));
  }
  in.B = random_tensor(c.dtype, {c.batch, c.seqlen, c.groups, c.dstate});
  in.C = random_tensor(c.dtype, {c.batch, c.seqlen, c.groups, c.dstate});
  in.options.chunk_size = c.chunk;
  in.options.D = random_tensor(DType::F32, {c.heads});
  in.options.dt_bias = random_tensor(DType::F32, {c.heads}, 0.3);
  in.options.dt_softplus = true;
  in.options.return_final_states = true;
  in.options.out = poisoned(c.dtype, {c.batch, c.seqlen, c.heads, c.head_dim});
  return in;
}

double tolerance(DType dtype) { return dtype == DType::F32 ? kF32Tolerance : kBF16Tolerance; }

TEST(SsdScan, MatchesFloat64Reference) {
  const SsdCase cases[] = {
      {1, 1, 1, 1, 1, 1, 1, DType::F32},
      {2, 37, 4, 24, 16, 1, 8, DType::F32},     // chunk 8 leaves 5 steps in the last chunk
      {1, 70, 6, 10, 8, 3, 16, DType::F32},     // P 10: one padded tile; 3 groups of 2 heads
      {2, 33, 8, 20, 12, 2, 64, DType::F32},    // chunk larger than L
      {1, 129, 4, 48, 32, 4, 32, DType::F32},   // one head per group
      {2, 21, 4, 12, 8, 2, 5, DType::BF16},
      {1, 19, 2, 17, 6, 1, 4, DType::F16},
  };
  for (const SsdCase& c : cases) {
    SCOPED_TRACE(describe(c));
    const SsdInputs in = make_inputs(c);
    const auto got = hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, in.options);
    const auto want = hfport::ssd_scan_reference(in.x, in.dt, in.A, in.B, in.C, in.options);
    EXPECT_EQ(got.out.data(), in.options.out.data());
    EXPECT_LT(rel_l2(got.out, want.out), tolerance(c.dtype));
    EXPECT_LT(rel_l2(got.final_states, want.final_states), tolerance(c.dtype));
  }
}

TEST(SsdScan, ChunkSizeChangesOnlyTheRounding) {
  const SsdCase c{1, 50, 4, 16, 8, 2, 1, DType::F32};
  SsdInputs in = make_inputs(c);
  in.options.out = Tensor();
  const auto reference = hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, in.options);
  for (int64_t chunk : {3, 7, 16, 50, 256}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    in.options.chunk_size = chunk;
    const auto got = hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, in.options);
    EXPECT_LT(rel_l2(got.out, reference.out), 1e-5);
    EXPECT_LT(rel_l2(got.final_states, reference.final_states), 1e-5);
  }
}

TEST(SsdScan, StridedInputsInitialStatesAndLimits) {
  const SsdCase c{2, 23, 4, 12, 8, 2, 6, DType::F32};
  SsdInputs in = make_inputs(c);
  // x and B as transposed views of [batch, H, L, P] and [batch, G, L, N] tensors.
  const Tensor x_hl = random_tensor(DType::F32, {c.batch, c.heads, c.seqlen, c.head_dim});
  in.x = swap_dims(x_hl, 1, 2);
  const Tensor b_gl = random_tensor(DType::F32, {c.batch, c.groups, c.seqlen, c.dstate});
  in.B = swap_dims(b_gl, 1, 2);
  ASSERT_FALSE(in.x.is_contiguous());
  in.options.initial_states = random_tensor(DType::F32, {c.batch, c.heads, c.head_dim, c.dstate});
  in.options.dt_min = 0.2;
  in.options.dt_max = 0.6;  // binds: softplus(dt) ranges over roughly 0.1 .. 1.5 here
  const auto got = hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, in.options);
  const auto want = hfport::ssd_scan_reference(in.x, in.dt, in.A, in.B, in.C, in.options);
  EXPECT_LT(rel_l2(got.out, want.out), kF32Tolerance);
  EXPECT_LT(rel_l2(got.final_states, want.final_states), kF32Tolerance);
  // The clamp matters: without it the answer moves.
  hfport::SsdScanOptions unclamped = in.options;
  unclamped.dt_min = 0.0;
  unclamped.dt_max = INFINITY;
  unclamped.out = Tensor();
  const auto free = hfport::ssd_scan_reference(in.x, in.dt, in.A, in.B, in.C, unclamped);
  EXPECT_GT(rel_l2(free.out, want.out), 1e-2);
}

TEST(SsdScan, SplitSequenceContinuesFromFinalStates) {
  const SsdCase c{2, 30, 4, 12, 8, 2, 8, DType::F32};
  SsdInputs in = make_inputs(c);
  in.options.out = Tensor();
  const auto whole = hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, in.options);
  const int64_t cut = 13;
  auto first = hfport::ssd_scan(in.x.slice(1, 0, cut), in.dt.slice(1, 0, cut), in.A,
                                in.B.slice(1, 0, cut), in.C.slice(1, 0, cut), in.options);
  hfport::SsdScanOptions rest = in.options;
  rest.initial_states = first.final_states;
  const auto second = hfport::ssd_scan(in.x.slice(1, cut, c.seqlen), in.dt.slice(1, cut, c.seqlen),
                                       in.A, in.B.slice(1, cut, c.seqlen),
                                       in.C.slice(1, cut, c.seqlen), rest);
  EXPECT_LT(rel_l2(second.out, whole.out.slice(1, cut, c.seqlen).contiguous()), kF32Tolerance);
  EXPECT_LT(rel_l2(second.final_states, whole.final_states), kF32Tolerance);
}

TEST(SsdStateUpdate, ChainedStepsEqualTheScan) {
  const SsdCase c{2, 11, 6, 10, 8, 3, 4, DType::F32};
  SsdInputs in = make_inputs(c);
  in.options.out = Tensor();
  in.options.initial_states = random_tensor(DType::F32, {c.batch, c.heads, c.head_dim, c.dstate});
  const auto scan = hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, in.options);
  Tensor state = in.options.initial_states.clone();
  hfport::SsdStateUpdateOptions step;
  step.D = in.options.D;
  step.dt_bias = in.options.dt_bias;
  step.dt_softplus = true;
  Tensor steps = Tensor::empty(DType::F32, {c.batch, c.seqlen, c.heads, c.head_dim});
  const int64_t row = c.heads * c.head_dim;
  for (int64_t t = 0; t < c.seqlen; ++t) {
    step.out = poisoned(DType::F32, {c.batch, c.heads, c.head_dim});
    const Tensor y = hfport::ssd_state_update(state, in.x.select(1, t), in.dt.select(1, t), in.A,
                                              in.B.select(1, t), in.C.select(1, t), step);
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t i = 0; i < row; ++i) {
        steps.data_as<float>()[(b * c.seqlen + t) * row + i] = y.data_as<float>()[b * row + i];
      }
    }
  }
  EXPECT_LT(rel_l2(steps, scan.out), kF32Tolerance);
  EXPECT_LT(rel_l2(state, scan.final_states), kF32Tolerance);
}

TEST(SsdStateUpdate, FromARandomStateMatchesTheReference) {
  for (DType state_dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(std::string(hfport::dtype_name(state_dtype)));
    const int64_t batch = 3, heads = 4, head_dim = 9, dstate = 7, groups = 2;
    // A state stored [batch, H, N, P]: a strided view.
    Tensor state = swap_dims(random_tensor(state_dtype, {batch, heads, dstate, head_dim}), 2, 3);
    hfport::SsdStateUpdateOptions o;
    o.D = random_tensor(DType::F32, {heads});
    o.dt_bias = random_tensor(DType::F32, {heads});
    o.dt_softplus = true;
    o.dt_max = 0.8;
    const Tensor x = random_tensor(DType::F32, {batch, heads, head_dim});
    const Tensor dt = random_tensor(DType::F32, {batch, heads});
    const Tensor A = random_tensor(DType::F32, {heads}, 0.3, -1.0);
    const Tensor B = random_tensor(DType::F32, {batch, groups, dstate});
    const Tensor C = random_tensor(DType::F32, {batch, groups, dstate});
    const auto ref = hfport::ssd_state_update_reference(state, x, dt, A, B, C, o);
    const Tensor y = hfport::ssd_state_update(state, x, dt, A, B, C, o);
    const double tol = state_dtype == DType::F32 ? kF32Tolerance : kBF16Tolerance;
    EXPECT_LT(rel_l2(y, ref.y), tol);
    EXPECT_LT(rel_l2(state.contiguous(), ref.state), tol);
  }
}

TEST(SsdScan, ErrorsNameTheArgumentAndTheExpectation) {
  const SsdInputs in = make_inputs({1, 5, 4, 6, 3, 2, 4, DType::F32});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt.slice(1, 0, 4), in.A, in.B, in.C); },
      {"ssd_scan: dt must be [batch, L, H] = [1, 5, 4], got [1, 4, 4]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt, random_tensor(DType::F32, {3}), in.B, in.C); },
      {"ssd_scan: A must be [H] = [4], got [3]"}));
  const Tensor three_groups = random_tensor(DType::F32, {1, 5, 3, 3});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt, in.A, three_groups, three_groups); },
      {"ssd_scan: B's group count G = 3 must be >= 1 and divide the head count H = 4"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C.slice(3, 0, 2)); },
      {"ssd_scan: C must be the shape of B = [1, 5, 2, 3], got [1, 5, 2, 2]"}));
  hfport::SsdScanOptions o;
  o.chunk_size = 0;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, o); },
      {"ssd_scan: chunk_size must be >= 1, got 0"}));
  o.chunk_size = 4;
  o.initial_states = random_tensor(DType::F32, {1, 4, 3, 6});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, o); },
      {"ssd_scan: initial_states must be [batch, H, P, N] = [1, 4, 6, 3], got [1, 4, 3, 6]"}));
  o.initial_states = Tensor();
  o.dt_min = 1.0;
  o.dt_max = 0.5;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::ssd_scan(in.x, in.dt, in.A, in.B, in.C, o); },
      {"ssd_scan: the dt limits must satisfy dt_min <= dt_max", "dt_min = 1, dt_max = 0.5"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::ssd_state_update(Tensor::zeros(DType::F32, {1, 4, 6, 3}), in.x.select(1, 0),
                                 in.dt.select(1, 0), in.A, in.B.select(1, 0),
                                 in.C.select(1, 0).slice(2, 0, 2));
      },
      {"ssd_state_update: C must be the shape of B = [1, 2, 3], got [1, 2, 2]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::ssd_state_update(Tensor::zeros(DType::F32, {1, 4, 6, 3}), in.x.select(1, 0),
                                 random_tensor(DType::F16, {1, 4}), in.A,
                                 in.B.select(1, 0), in.C.select(1, 0));
      },
      {"ssd_state_update: dt must have the dtype of x (F32), got F16"}));
}

TEST(RmsNormGated, MatchesFloat64Reference) {
  struct Case {
    int64_t rows, cols, group;
    bool gate;
    DType dtype;
  };
  for (const Case& c : {Case{3, 40, 0, true, DType::F32}, Case{5, 48, 12, true, DType::F32},
                        Case{2, 30, 10, false, DType::F32}, Case{4, 64, 16, true, DType::BF16}}) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols) +
                 " group " + std::to_string(c.group));
    const Tensor x = random_tensor(c.dtype, {c.rows, c.cols});
    const Tensor w = random_tensor(DType::F32, {c.cols}, 0.2, 1.0);
    hfport::GatedRmsNormOptions o;
    if (c.gate) o.gate = random_tensor(c.dtype, {c.rows, c.cols});
    o.group_size = c.group;
    o.out = poisoned(c.dtype, {c.rows, c.cols});
    const Tensor got = hfport::rms_norm_gated(x, w, 1e-5, o);
    const Tensor want = hfport::rms_norm_gated_reference(x, w, 1e-5, o);
    EXPECT_LT(rel_l2(got, want), tolerance(c.dtype));
  }
  // Groups normalise separately: scaling one group leaves the others' outputs alone.
  const Tensor x = random_tensor(DType::F32, {1, 8});
  const Tensor w = random_tensor(DType::F32, {8}, 0.2, 1.0);
  hfport::GatedRmsNormOptions grouped;
  grouped.group_size = 4;
  const Tensor before = hfport::rms_norm_gated(x, w, 1e-5, grouped);
  Tensor scaled = x.clone();
  for (int64_t i = 4; i < 8; ++i) scaled.data_as<float>()[i] *= 3.0f;
  const Tensor after = hfport::rms_norm_gated(scaled, w, 1e-5, grouped);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(before.data_as<float>()[i], after.data_as<float>()[i]);
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::GatedRmsNormOptions bad;
        bad.group_size = 3;
        hfport::rms_norm_gated(x, w, 1e-5, bad);
      },
      {"rms_norm_gated: group_size must be 0 (the whole row) or divide hidden = 8, got 3"}));
}

}  // namespace
