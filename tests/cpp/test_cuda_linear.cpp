// linear on CUDA (ops/cuda/linear.h, cuBLASLt) against the CPU op, which is itself checked
// against float64 in test_norm_activation_linear.cpp: f32 / f16 / bf16 (+ TF32), odd sizes, with
// and without bias, every activation, both epilogue placements, every weight layout, outputs
// poisoned with NaN; and the algorithm cache (one heuristic query per problem). Relative L2
// against the CPU op: f32 < 1e-5, f16 and bf16 < 1e-2.
//
// The device checks at the top run on every machine (tensors labelled CUDA over host bytes are
// never dereferenced); the rest needs a visible GPU and skips without one, or holds no test in a
// build without cuBLASLt.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/error.h"
#include "core/tensor.h"
#include "cuda_test_support.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/linear.h"

#ifdef HFPORT_WITH_CUBLASLT
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/gemm_simple.h"
#include "ops/cuda/linear.h"
#endif

namespace {

using hfport::Device;
using hfport::DeviceType;
using hfport::DType;
using hfport::LinearActivation;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::labelled_cuda_tensor;
using hfport_test::throws_exactly;

TEST(LinearDevices, MixedDevicesAreADeviceError) {
  std::vector<float> host(4 * 16);
  const Tensor x = labelled_cuda_tensor(host, {4, 16});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::linear(x, hfport_test::random_tensor(DType::F32, {8, 16})); },
      {"linear: all tensors must be on one device; x is on cuda:0, weight on cpu"}));
}

TEST(LinearDevices, NoUsableDeviceIsADeviceErrorSayingWhy) {
  if (hfport::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible here";
  std::vector<float> x_host(4 * 16), w_host(8 * 16);
  const Tensor x = labelled_cuda_tensor(x_host, {4, 16});
  const Tensor w = labelled_cuda_tensor(w_host, {8, 16});
  // Without CUDA the build says so; with CUDA but without cuBLASLt, how to get it; with both, that
  // no device is visible.
  std::string why = "no CUDA device is visible";
  if (!hfport::built_with_cuda()) why = "compiled without";
  else if (!hfport::built_with_cublaslt()) why = "no cuBLASLt";
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>([&] { hfport::linear(x, w); }, {"cuda:0", why}));
}

#ifdef HFPORT_WITH_CUBLASLT

using hfport::cuda::EpiloguePlacement;
using hfport_test::download;
using hfport_test::poisoned;
using hfport_test::random_tensor;
using hfport_test::rel_l2;
using hfport_test::swap_dims;
using hfport_test::tolerance;
using hfport_test::upload;

const Device kCuda0{DeviceType::CUDA, 0};

class CudaLinear : public hfport_test::CudaDeviceTest {};

const char* activation_name(LinearActivation act) {
  switch (act) {
    case LinearActivation::Gelu: return "gelu";
    case LinearActivation::GeluTanh: return "gelu_tanh";
    case LinearActivation::None: break;
  }
  return "none";
}

// The CUDA op on device copies of the host inputs, into a poisoned device output, brought back.
Tensor run_on_gpu(const Tensor& x, const Tensor& w, const Tensor& b,
                  const hfport::LinearOptions& options, EpiloguePlacement placement,
                  const Shape& out_shape) {
  const Tensor out = upload(poisoned(x.dtype(), out_shape));
  hfport::cuda::linear(upload(x), upload(w), b.defined() ? upload(b) : Tensor(), out, options,
                       placement);
  return download(out);
}

TEST_F(CudaLinear, MatchesTheCpuOp) {
  // rows 1 (a decode step), 17 and 1000; in and out odd, not multiples of 8.
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 37, 29}, {17, 45, 19}, {1000, 33, 71}};
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (const auto& [rows, in, out] : sizes) {
      const Tensor x = random_tensor(dtype, {rows, in});
      const Tensor w = random_tensor(dtype, {out, in});
      for (bool with_bias : {true, false}) {
        const Tensor b = with_bias ? random_tensor(dtype, {out}) : Tensor();
        for (LinearActivation act :
             {LinearActivation::None, LinearActivation::GeluTanh, LinearActivation::Gelu}) {
          hfport::LinearOptions options;
          options.activation = act;
          const Tensor want = hfport::linear(x, w, b, Tensor(), options);
          for (EpiloguePlacement placement : {EpiloguePlacement::Fused, EpiloguePlacement::Separate}) {
            SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + std::to_string(rows) + "x" +
                         std::to_string(in) + " -> " + std::to_string(out) +
                         (with_bias ? " bias " : " ") + activation_name(act) +
                         (placement == EpiloguePlacement::Fused ? " fused" : " separate"));
            const Tensor got = run_on_gpu(x, w, b, options, placement, {rows, out});
            EXPECT_LT(rel_l2(got, want), tolerance(dtype));
          }
        }
      }
    }
  }
}

TEST_F(CudaLinear, Tf32OnlyWhenAskedFor) {
  const Tensor x = random_tensor(DType::F32, {64, 257});
  const Tensor w = random_tensor(DType::F32, {129, 257});
  const Tensor want = hfport::linear(x, w);
  hfport::LinearOptions options;
  const Tensor exact = run_on_gpu(x, w, Tensor(), options, EpiloguePlacement::Fused, {64, 129});
  EXPECT_LT(rel_l2(exact, want), hfport_test::kF32Tolerance);
  options.allow_tf32 = true;
  const Tensor tf32 = run_on_gpu(x, w, Tensor(), options, EpiloguePlacement::Fused, {64, 129});
  // TF32 keeps 10 mantissa bits: about 1e-3 relative per product, far below that in the sum.
  EXPECT_LT(rel_l2(tf32, want), 5e-3);
}

// One view made the same way over host data and over a device copy of it (a strided device
// tensor cannot be copied back, so the CPU reference reads the host view).
struct ViewPair {
  Tensor host, device;
};

template <typename MakeView>
ViewPair view_pair(const Tensor& host, MakeView&& make_view) {
  return {make_view(host), make_view(upload(host))};
}

TEST_F(CudaLinear, WeightLayoutsBiasStridesAndStridedInput) {
  // [3, 10, 24] viewed from [3, 24, 10]: copied contiguous by the op.
  const ViewPair x = view_pair(random_tensor(DType::BF16, {3, 24, 10}),
                               [](const Tensor& t) { return swap_dims(t, 1, 2); });
  // [out, in] viewed from an [in, out] matrix (GPT-2 Conv1D): read in place with TRANSA = N.
  const ViewPair transposed = view_pair(random_tensor(DType::BF16, {24, 17}),
                                        [](const Tensor& t) { return swap_dims(t, 0, 1); });
  // [out, in] rows with padding, a row stride larger than in: read in place.
  const ViewPair padded = view_pair(random_tensor(DType::BF16, {17, 30}),
                                    [](const Tensor& t) { return t.slice(1, 0, 24); });
  // Neither: a column stride of 2, copied first.
  const ViewPair every_other = view_pair(random_tensor(DType::BF16, {17, 48}),
                                         [](const Tensor& t) { return t.slice(1, 0, 48, 2); });
  // A strided f32 bias: converted to bf16 for the epilogue, gathered by the separate placement.
  const ViewPair bias = view_pair(random_tensor(DType::F32, {34}),
                                  [](const Tensor& t) { return t.slice(0, 0, 34, 2); });
  for (const ViewPair* w : {&transposed, &padded, &every_other}) {
    for (EpiloguePlacement placement : {EpiloguePlacement::Fused, EpiloguePlacement::Separate}) {
      SCOPED_TRACE(hfport::shape_to_string(w->host.strides()) +
                   (placement == EpiloguePlacement::Fused ? " fused" : " separate"));
      hfport::LinearOptions options;
      options.activation = LinearActivation::GeluTanh;
      const Tensor want = hfport::linear(x.host, w->host, bias.host, Tensor(), options);
      const Tensor out = upload(poisoned(DType::BF16, {3, 10, 17}));
      hfport::cuda::linear(x.device, w->device, bias.device, out, options, placement);
      EXPECT_LT(rel_l2(download(out), want), hfport_test::kBF16Tolerance);
    }
  }
}

TEST_F(CudaLinear, ABiasStartingOffAlignmentIsReadFromAnAlignedCopy) {
  // The bias one element into its storage (2 or 4 bytes past a 256-byte boundary): the heuristic
  // cannot be told a bias's alignment, and an epilogue reading it in 16-byte vectors would fault.
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    SCOPED_TRACE(hfport::dtype_name(dtype));
    const Tensor x = random_tensor(dtype, {6, 40});
    const Tensor w = random_tensor(dtype, {24, 40});
    const ViewPair bias = view_pair(random_tensor(dtype, {25}),
                                    [](const Tensor& t) { return t.slice(0, 1, 25); });
    for (LinearActivation act : {LinearActivation::None, LinearActivation::GeluTanh}) {
      hfport::LinearOptions options;
      options.activation = act;
      const Tensor want = hfport::linear(x, w, bias.host, Tensor(), options);
      const Tensor out = upload(poisoned(dtype, {6, 24}));
      hfport::cuda::linear(upload(x), upload(w), bias.device, out, options,
                           EpiloguePlacement::Fused);
      EXPECT_LT(rel_l2(download(out), want), tolerance(dtype));
    }
  }
}

TEST_F(CudaLinear, EmptySumIsTheActivatedBias) {
  const Tensor x = random_tensor(DType::F32, {5, 0});
  const Tensor w = random_tensor(DType::F32, {7, 0});
  const Tensor b = random_tensor(DType::F32, {7});
  hfport::LinearOptions options;
  options.activation = LinearActivation::Gelu;
  const Tensor want = hfport::linear(x, w, b, Tensor(), options);
  const Tensor got = run_on_gpu(x, w, b, options, EpiloguePlacement::Fused, {5, 7});
  EXPECT_LT(rel_l2(got, want), hfport_test::kF32Tolerance);
  const Tensor zeros = run_on_gpu(x, w, Tensor(), options, EpiloguePlacement::Fused, {5, 7});
  for (int64_t i = 0; i < zeros.numel(); ++i) EXPECT_EQ(zeros.data_as<float>()[i], 0.0f);
}

TEST_F(CudaLinear, TheEntryPointDispatchesHereAndChecksOut) {
  const Tensor x = random_tensor(DType::F16, {9, 21});
  const Tensor w = random_tensor(DType::F16, {13, 21});
  const Tensor got = download(hfport::linear(upload(x), upload(w)));
  EXPECT_LT(rel_l2(got, hfport::linear(x, w)), hfport_test::kBF16Tolerance);
  const Tensor wrong_dtype = upload(poisoned(DType::F32, {9, 13}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::linear(upload(x), upload(w), Tensor(), wrong_dtype); },
      {"linear: out must have dtype F16, got F32"}));
}

TEST_F(CudaLinear, OneHeuristicQueryPerProblem) {
  // Sizes no other test uses, so the first call is this problem's first.
  const Tensor x = upload(random_tensor(DType::F16, {3, 41}));
  const Tensor w = upload(random_tensor(DType::F16, {43, 41}));
  const Tensor b = upload(random_tensor(DType::F16, {43}));
  const auto before = hfport::cuda::linear_algorithm_cache_stats(kCuda0);
  hfport::linear(x, w, b);
  const auto first = hfport::cuda::linear_algorithm_cache_stats(kCuda0);
  EXPECT_GT(first.heuristic_queries, before.heuristic_queries);
  EXPECT_EQ(first.cached_problems - before.cached_problems,
            first.heuristic_queries - before.heuristic_queries);
  // The same problem again, with fresh inputs and output (other pointers, the same alignment).
  hfport::linear(upload(random_tensor(DType::F16, {3, 41})), w, b);
  hfport::linear(x, w, b);
  const auto again = hfport::cuda::linear_algorithm_cache_stats(kCuda0);
  EXPECT_EQ(again.heuristic_queries, first.heuristic_queries);
  EXPECT_EQ(again.cached_problems, first.cached_problems);
  // Another problem (one more row) is asked about once.
  hfport::linear(upload(random_tensor(DType::F16, {4, 41})), w, b);
  const auto other = hfport::cuda::linear_algorithm_cache_stats(kCuda0);
  EXPECT_GT(other.heuristic_queries, again.heuristic_queries);
  EXPECT_EQ(hfport::cuda::linear_algorithm_cache_stats(Device{DeviceType::CUDA, 999}).heuristic_queries,
            0);
}

// The fallback GEMM (what linear runs where cuBLASLt has no algorithm) on its own, both weight
// layouts, with and without accumulating onto a bias already in y, against the CPU op.
TEST_F(CudaLinear, FallbackGemmMatchesTheCpuOp) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (const auto& [rows, in, out] : std::vector<std::array<int64_t, 3>>{{1, 1, 7}, {5, 7, 1}, {17, 33, 9}}) {
      for (bool transposed : {false, true}) {
        for (bool with_bias : {false, true}) {
          SCOPED_TRACE(std::string(hfport::dtype_name(dtype)) + " " + std::to_string(rows) + "x" +
                       std::to_string(in) + "x" + std::to_string(out) +
                       (transposed ? " transposed" : "") + (with_bias ? " bias" : ""));
          const Tensor x = random_tensor(dtype, {rows, in});
          // [out, in] as stored, or a transposed view of an [in, out] matrix.
          const Tensor w_stored = random_tensor(dtype, transposed ? Shape{in, out} : Shape{out, in});
          const Tensor w = transposed ? swap_dims(w_stored, 0, 1) : w_stored;
          const Tensor bias = random_tensor(dtype, {out});
          const Tensor want = hfport::linear(x, w, with_bias ? bias : Tensor());
          Tensor y0 = poisoned(dtype, {rows, out});
          if (with_bias) {
            for (int64_t r = 0; r < rows; ++r) {
              std::memcpy(y0.data() + r * out * hfport::dtype_size(dtype), bias.data(), bias.nbytes());
            }
          }
          const Tensor d_x = upload(x), d_w = upload(w_stored);
          Tensor d_y = upload(y0);
          hfport::cuda::SimpleGemmParams p;
          p.rows = rows;
          p.in = in;
          p.out = out;
          p.dtype = dtype;
          p.x = d_x.data();
          p.weight = d_w.data();
          p.w_out_stride = transposed ? 1 : in;
          p.w_in_stride = transposed ? out : 1;
          p.y = d_y.data();
          p.accumulate = with_bias;
          hfport::cuda::gemm_simple(p, nullptr);
          EXPECT_LT(rel_l2(download(d_y), want), tolerance(dtype));
        }
      }
    }
  }
}

#endif  // HFPORT_WITH_CUBLASLT

}  // namespace
