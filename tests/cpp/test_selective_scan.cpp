// The selective scan and its one-step update against their float64 references, on random inputs
// at odd sizes (channel counts that leave a partial SIMD block, lengths that cross the 64-step
// staging chunk), every B/C layout, f32, f16 and bf16, strided inputs, and poisoned outputs.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/selective_scan.h"

namespace {

using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using namespace hfport_test;

enum class Layout { Channel, Time, Grouped };

struct ScanCase {
  int64_t batch, dim, dstate, seqlen;
  Layout layout;
  DType dtype;
};

struct ScanInputs {
  Tensor u, delta, A, B, C;
  hfport::SelectiveScanOptions options;
};

ScanInputs make_inputs(const ScanCase& c, bool all_options = true) {
  ScanInputs in;
  in.u = random_tensor(c.dtype, {c.batch, c.dim, c.seqlen});
  in.delta = random_tensor(c.dtype, {c.batch, c.dim, c.seqlen}, 0.5);
  Tensor log_a = random_tensor(DType::F64, {c.dim, c.dstate}, 0.5);
  in.A = Tensor::empty(DType::F32, {c.dim, c.dstate});
  for (int64_t i = 0; i < log_a.numel(); ++i) {
    in.A.data_as<float>()[i] = static_cast<float>(-std::exp(log_a.data_as<double>()[i]));
  }
  Shape bc;
  switch (c.layout) {
    case Layout::Channel: bc = {c.dim, c.dstate}; break;
    case Layout::Time: bc = {c.batch, c.dstate, c.seqlen}; break;
    case Layout::Grouped: bc = {c.batch, 2, c.dstate, c.seqlen}; break;
  }
  in.B = random_tensor(c.dtype, bc);
  in.C = random_tensor(c.dtype, bc);
  if (all_options) {
    in.options.D = random_tensor(DType::F32, {c.dim});
    in.options.z = random_tensor(c.dtype, {c.batch, c.dim, c.seqlen});
    in.options.delta_bias = random_tensor(DType::F32, {c.dim}, 0.3);
    in.options.delta_softplus = true;
  }
  in.options.return_last_state = true;
  in.options.out = poisoned(c.dtype, {c.batch, c.dim, c.seqlen});
  return in;
}

std::string describe(const ScanCase& c) {
  return "batch " + std::to_string(c.batch) + " dim " + std::to_string(c.dim) + " N " +
         std::to_string(c.dstate) + " L " + std::to_string(c.seqlen) + " layout " +
         std::to_string(static_cast<int>(c.layout)) + " " +
         std::string(hfport::dtype_name(c.dtype));
}

TEST(SelectiveScan, MatchesTheFloat64ReferenceOnOddShapes) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (Layout layout : {Layout::Channel, Layout::Time, Layout::Grouped}) {
      for (auto [batch, dim, dstate, seqlen] :
           {std::array<int64_t, 4>{1, 6, 3, 7}, {2, 38, 16, 70}, {3, 18, 5, 130}}) {
        const ScanCase c{batch, dim, dstate, seqlen, layout, dtype};
        SCOPED_TRACE(describe(c));
        ScanInputs in = make_inputs(c);
        const Tensor poisoned_out = in.options.out;
        const auto fast = hfport::selective_scan(in.u, in.delta, in.A, in.B, in.C, in.options);
        const auto ref = hfport::selective_scan_reference(in.u, in.delta, in.A, in.B, in.C, in.options);
        EXPECT_EQ(fast.out.data(), poisoned_out.data());
        const double tol = dtype == DType::F32 ? kF32Tolerance : kBF16Tolerance;
        EXPECT_LT(rel_l2(fast.out, ref.out), tol);
        EXPECT_LT(rel_l2(fast.last_state, ref.last_state), tol);
        EXPECT_EQ(fast.last_state.dtype(), DType::F32);
      }
    }
  }
}

TEST(SelectiveScan, WithoutOptionalInputs) {
  const ScanCase c{2, 21, 8, 66, Layout::Time, DType::F32};
  ScanInputs in = make_inputs(c, /*all_options=*/false);
  // Without softplus, keep dt positive so the recurrence decays.
  for (int64_t i = 0; i < in.delta.numel(); ++i) {
    in.delta.data_as<float>()[i] = std::fabs(in.delta.data_as<float>()[i]);
  }
  const auto fast = hfport::selective_scan(in.u, in.delta, in.A, in.B, in.C, in.options);
  const auto ref = hfport::selective_scan_reference(in.u, in.delta, in.A, in.B, in.C, in.options);
  EXPECT_LT(rel_l2(fast.out, ref.out), kF32Tolerance);
}

TEST(SelectiveScan, StridedInputs) {
  const int64_t batch = 2, dim = 19, dstate = 6, seqlen = 45;
  // u and delta stored [batch, L, dim], B and C stored [batch, L, N] (what MambaMixer passes).
  ScanInputs in;
  in.u = swap_dims(random_tensor(DType::F32, {batch, seqlen, dim}), 1, 2);
  in.delta = swap_dims(random_tensor(DType::F32, {batch, seqlen, dim}, 0.5), 1, 2);
  in.A = random_tensor(DType::F32, {dim, dstate}, 0.2, -1.0);
  in.B = swap_dims(random_tensor(DType::F32, {batch, seqlen, dstate}), 1, 2);
  in.C = swap_dims(random_tensor(DType::F32, {batch, seqlen, dstate}), 1, 2);
  in.options.z = swap_dims(random_tensor(DType::F32, {batch, seqlen, dim}), 1, 2);
  in.options.delta_softplus = true;
  ASSERT_FALSE(in.u.is_contiguous());
  const auto fast = hfport::selective_scan(in.u, in.delta, in.A, in.B, in.C, in.options);
  const auto ref = hfport::selective_scan_reference(in.u, in.delta, in.A, in.B, in.C, in.options);
  EXPECT_LT(rel_l2(fast.out, ref.out), kF32Tolerance);
}

TEST(SelectiveStateUpdate, ChainedStepsEqualTheFullScan) {
  const int64_t batch = 2, dim = 20, dstate = 5, seqlen = 17;
  ScanInputs in = make_inputs({batch, dim, dstate, seqlen, Layout::Time, DType::F32});
  in.options.out = Tensor();
  const auto full = hfport::selective_scan(in.u, in.delta, in.A, in.B, in.C, in.options);
  Tensor state = Tensor::zeros(DType::F32, {batch, dim, dstate});
  hfport::SelectiveStateUpdateOptions step;
  step.D = in.options.D;
  step.dt_bias = in.options.delta_bias;
  step.dt_softplus = true;
  Tensor steps = Tensor::empty(DType::F32, {batch, dim, seqlen});
  for (int64_t t = 0; t < seqlen; ++t) {
    step.z = in.options.z.select(2, t);
    step.out = poisoned(DType::F32, {batch, dim});
    const Tensor y = hfport::selective_state_update(state, in.u.select(2, t), in.delta.select(2, t),
                                                    in.A, in.B.select(2, t), in.C.select(2, t), step);
    for (int64_t i = 0; i < batch * dim; ++i) {
      steps.data_as<float>()[i * seqlen + t] = y.data_as<float>()[i];
    }
  }
  EXPECT_LT(rel_l2(steps, full.out), kF32Tolerance);
  EXPECT_LT(rel_l2(state, full.last_state), kF32Tolerance);
}

TEST(SelectiveStateUpdate, FromARandomStateMatchesTheReference) {
  for (DType state_dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(std::string(hfport::dtype_name(state_dtype)));
    const int64_t batch = 3, dim = 12, dstate = 7;
    // Grouped B/C, [batch, G, N], and a state stored [batch, N, dim] (a strided view).
    Tensor state = swap_dims(random_tensor(state_dtype, {batch, dstate, dim}), 1, 2);
    hfport::SelectiveStateUpdateOptions o;
    o.D = random_tensor(DType::F32, {dim});
    o.z = random_tensor(DType::F32, {batch, dim});
    o.dt_bias = random_tensor(DType::F32, {dim});
    o.dt_softplus = true;
    const Tensor x = random_tensor(DType::F32, {batch, dim});
    const Tensor dt = random_tensor(DType::F32, {batch, dim});
    const Tensor A = random_tensor(DType::F32, {dim, dstate}, 0.3, -1.0);
    const Tensor B = random_tensor(DType::F32, {batch, 3, dstate});
    const Tensor C = random_tensor(DType::F32, {batch, 3, dstate});
    const auto ref = hfport::selective_state_update_reference(state, x, dt, A, B, C, o);
    const Tensor y = hfport::selective_state_update(state, x, dt, A, B, C, o);
    const double tol = state_dtype == DType::F32 ? kF32Tolerance : kBF16Tolerance;
    EXPECT_LT(rel_l2(y, ref.y), tol);
    EXPECT_LT(rel_l2(state.contiguous(), ref.state), tol);
  }
}

TEST(SelectiveScan, ErrorsNameTheArgumentAndTheExpectation) {
  ScanInputs in = make_inputs({1, 12, 4, 5, Layout::Time, DType::F32});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::selective_scan(in.u, in.delta, swap_dims(in.A, 0, 1), in.B, in.C); },
      {"selective_scan: A must be [dim, N] = [12, 4], got [4, 12]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::selective_scan(in.u, in.delta.select(2, 0), in.A, in.B, in.C); },
      {"selective_scan: delta must be [batch, dim, L] = [1, 12, 5], got [1, 12]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::selective_scan(in.u, in.delta, in.A, in.B, in.C.slice(1, 0, 3)); },
      {"selective_scan: C must be the shape of B = [1, 4, 5], got [1, 3, 5]"}));
  hfport::SelectiveScanOptions bad_d;
  bad_d.D = random_tensor(DType::F32, {11});
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::selective_scan(in.u, in.delta, in.A, in.B, in.C, bad_d); },
      {"selective_scan: D must be [dim] = [12], got [11]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::selective_scan(Tensor::zeros(DType::I32, {1, 12, 5}), in.delta, in.A, in.B, in.C);
      },
      {"selective_scan: u must have dtype F32, F16 or BF16, got I32"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::selective_state_update(Tensor::zeros(DType::F32, {1, 12, 4}), in.u.select(2, 0),
                                       in.delta.select(2, 0), in.A, in.B.select(2, 0),
                                       in.C.select(2, 0).slice(1, 0, 2));
      },
      {"selective_state_update: C must be the shape of B = [1, 4], got [1, 2]"}));
}

}  // namespace
