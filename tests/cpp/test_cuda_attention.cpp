// The simple CUDA attention kernel (kernels/cuda/attention.h: attention_simple) on AttentionParams
// filled by hand with device pointers, against attention_reference (float64, every score formed)
// on the same host inputs; then hfport::attention on CUDA tensors (the entry point's dispatch,
// its device copy of a non-unit-stride last dimension, masks read on the device) against the CPU
// op. Fresh random inputs at odd sizes: GQA and MQA, decode (Sq < Sk), Sq > Sk, causal with
// bottom-right alignment, sliding windows, key padding of every accepted dtype, bool and additive
// masks with broadcast strides, bhsd and bshd, strided q/k/v, head dims from 1 to 512, f32/f16/
// bf16. Outputs and lse are poisoned with NaN on the device before each launch, so an element the
// kernel forgets to write fails. Relative L2: f32 < 1e-5, f16 and bf16 < 1e-2.
// Without a visible GPU the device tests skip; the argument checks that need no device run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "core/dtype.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "ops/attention.h"

#ifdef HFPORT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "cuda_test_support.h"

#include "core/device_copy.h"
#include "core/error.h"
#include "kernels/cuda/attention.h"
#endif

namespace {

#ifdef HFPORT_WITH_CUDA

using hfport::AttentionLayout;
using hfport::AttentionOptions;
using hfport::AttentionParams;
using hfport::Device;
using hfport::DeviceType;
using hfport::DType;
using hfport::Shape;
using hfport::Tensor;
using hfport_test::download;
using hfport_test::poisoned;
using hfport_test::random_tensor;
using hfport_test::rel_l2;
using hfport_test::swap_dims;
using hfport_test::throws_exactly;
using hfport_test::tolerance;
using hfport_test::upload;  // a strided device view is made of an upload

constexpr auto BHSD = AttentionLayout::BHSD;
constexpr auto BSHD = AttentionLayout::BSHD;
const Device kGpu{DeviceType::CUDA, 0};

class CudaAttention : public hfport_test::CudaDeviceTest {};

enum class MaskKind { None, BoolPerBatch, AdditiveF32Shared, AdditiveBF16Full };

struct Case {
  int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim, v_dim;
  bool causal;
  int64_t window;       // 0: none
  DType padding;        // F64: no key padding mask; else its dtype
  MaskKind mask;
  AttentionLayout layout;
  bool strided;         // q, k, v are views with heads and seq stored the other way round
  DType dtype;
};

std::string describe(const Case& c) {
  return "B" + std::to_string(c.batch) + " H" + std::to_string(c.q_heads) + "/" +
         std::to_string(c.kv_heads) + " S" + std::to_string(c.q_len) + "x" +
         std::to_string(c.kv_len) + " D" + std::to_string(c.head_dim) + "/" +
         std::to_string(c.v_dim) + (c.causal ? " causal" : "") + " window " +
         std::to_string(c.window) + " padding " +
         (c.padding == DType::F64 ? "none" : std::string(hfport::dtype_name(c.padding))) +
         " mask " + std::to_string(static_cast<int>(c.mask)) +
         (c.layout == BHSD ? " bhsd" : " bshd") + (c.strided ? " strided " : " ") +
         std::string(hfport::dtype_name(c.dtype));
}

// q/k/v in the case's layout; strided: the same shape as a swapped view of a tensor stored with
// heads and seq the other way round.
struct Operand {
  Tensor stored;  // contiguous, what is uploaded
  Tensor view;    // what the op reads
};

Operand operand(const Case& c, int64_t heads, int64_t seq, int64_t dim) {
  const bool bhsd = (c.layout == BHSD) != c.strided;
  const Shape shape = bhsd ? Shape{c.batch, heads, seq, dim} : Shape{c.batch, seq, heads, dim};
  Tensor stored = random_tensor(c.dtype, shape);
  return {stored, c.strided ? swap_dims(stored, 1, 2) : stored};
}

Tensor device_view(const Operand& o, bool strided) {
  const Tensor device = upload(o.stored);
  return strided ? swap_dims(device, 1, 2) : device;
}

// (batch, heads, seq) strides of a 4-D tensor in `layout`.
void head_strides(const Tensor& t, AttentionLayout layout, int64_t* out) {
  out[0] = t.strides()[0];
  out[1] = t.strides()[layout == BHSD ? 1 : 2];
  out[2] = t.strides()[layout == BHSD ? 2 : 1];
}

// A key padding mask [B, Sk] of `dtype` keeping about 80% of the keys, and key 0 of batch 0
// hidden so that a fully padded prefix is exercised.
Tensor key_padding(const Case& c) {
  Tensor mask = Tensor::empty(c.padding, {c.batch, c.kv_len});
  std::bernoulli_distribution coin(0.8);
  for (int64_t i = 0; i < mask.numel(); ++i) {
    const int keep = i == 0 ? 0 : (coin(hfport_test::kernel_rng()) ? 1 : 0);
    switch (c.padding) {
      case DType::I32: mask.data_as<int32_t>()[i] = keep; break;
      case DType::I64: mask.data_as<int64_t>()[i] = keep; break;
      default: mask.data_as<uint8_t>()[i] = static_cast<uint8_t>(keep); break;
    }
  }
  return mask;
}

// The attn_mask of the case and its [batch, head, query, key] strides (0 along broadcast dims).
Tensor attn_mask(const Case& c, int64_t* strides) {
  const int64_t sq = c.q_len, sk = c.kv_len;
  switch (c.mask) {
    case MaskKind::BoolPerBatch: {  // [B, 1, Sq, Sk]; query 0 of batch 0 sees nothing
      Tensor mask = Tensor::empty(DType::BOOL, {c.batch, 1, sq, sk});
      std::bernoulli_distribution coin(0.7);
      for (int64_t i = 0; i < mask.numel(); ++i) {
        mask.data_as<uint8_t>()[i] = i < sk ? 0 : (coin(hfport_test::kernel_rng()) ? 1 : 0);
      }
      strides[0] = sq * sk, strides[1] = 0, strides[2] = sk, strides[3] = 1;
      return mask;
    }
    case MaskKind::AdditiveF32Shared: {  // [Sq, Sk], some entries -inf
      Tensor mask = random_tensor(DType::F32, {sq, sk}, 2.0);
      for (int64_t i = 0; i < mask.numel(); i += 5) {
        mask.data_as<float>()[i] = -std::numeric_limits<float>::infinity();
      }
      strides[0] = 0, strides[1] = 0, strides[2] = sk, strides[3] = 1;
      return mask;
    }
    case MaskKind::AdditiveBF16Full: {  // [B, Hq, Sq, Sk]
      Tensor mask = random_tensor(DType::BF16, {c.batch, c.q_heads, sq, sk});
      strides[0] = c.q_heads * sq * sk, strides[1] = sq * sk, strides[2] = sk, strides[3] = 1;
      return mask;
    }
    default:
      return Tensor();
  }
}

void check_kernel(const Case& c) {
  SCOPED_TRACE(describe(c));
  const Operand q = operand(c, c.q_heads, c.q_len, c.head_dim);
  const Operand k = operand(c, c.kv_heads, c.kv_len, c.head_dim);
  const Operand v = operand(c, c.kv_heads, c.kv_len, c.v_dim);
  AttentionOptions options;
  options.causal = c.causal;
  options.layout = c.layout;
  options.return_lse = true;
  if (c.window > 0) options.sliding_window = c.window;
  if (c.padding != DType::F64) options.key_padding_mask = key_padding(c);
  int64_t mask_strides[4] = {};
  options.attn_mask = attn_mask(c, mask_strides);
  const hfport::AttentionResult want = hfport::attention_reference(q.view, k.view, v.view, options);

  const Tensor dq = device_view(q, c.strided);
  const Tensor dk = device_view(k, c.strided);
  const Tensor dv = device_view(v, c.strided);
  const Shape out_shape = c.layout == BHSD ? Shape{c.batch, c.q_heads, c.q_len, c.v_dim}
                                           : Shape{c.batch, c.q_len, c.q_heads, c.v_dim};
  const Tensor out = upload(poisoned(c.dtype, out_shape));
  const Tensor lse = upload(poisoned(DType::F32, {c.batch, c.q_heads, c.q_len}));
  Tensor padding, mask;

  AttentionParams p;
  p.batch = c.batch, p.q_heads = c.q_heads, p.kv_heads = c.kv_heads;
  p.q_len = c.q_len, p.kv_len = c.kv_len, p.head_dim = c.head_dim, p.v_dim = c.v_dim;
  p.dtype = c.dtype;
  p.q = dq.data(), p.k = dk.data(), p.v = dv.data(), p.out = out.data();
  head_strides(dq, c.layout, p.q_stride);
  head_strides(dk, c.layout, p.k_stride);
  head_strides(dv, c.layout, p.v_stride);
  head_strides(out, c.layout, p.out_stride);
  p.lse = lse.data_as<float>();
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  p.causal = c.causal;
  p.sliding_window = c.window;
  if (options.key_padding_mask.defined()) {
    padding = upload(options.key_padding_mask);
    p.key_padding = padding.data();
    p.key_padding_dtype = c.padding;
    p.key_padding_stride[0] = c.kv_len, p.key_padding_stride[1] = 1;
  }
  if (options.attn_mask.defined()) {
    mask = upload(options.attn_mask);
    p.mask = mask.data();
    p.mask_dtype = mask.dtype();
    for (int d = 0; d < 4; ++d) p.mask_stride[d] = mask_strides[d];
  }
  hfport::cuda::attention_simple(p, nullptr);
  ASSERT_CUDA(cudaDeviceSynchronize());

  EXPECT_LT(rel_l2(download(out), want.out), tolerance(c.dtype));
  const Tensor got_lse = download(lse);
  const auto* want_lse = want.lse.data_as<double>();
  for (int64_t i = 0; i < got_lse.numel(); ++i) {
    const float got = got_lse.data_as<float>()[i];
    if (std::isinf(want_lse[i])) {
      EXPECT_EQ(got, -std::numeric_limits<float>::infinity()) << "lse row " << i;
    } else {
      EXPECT_NEAR(got, want_lse[i], 1e-4 * (1.0 + std::fabs(want_lse[i]))) << "lse row " << i;
    }
  }
}

constexpr DType kNoPadding = DType::F64;

TEST_F(CudaAttention, KernelMatchesReferenceF32) {
  check_kernel({2, 8, 2, 17, 17, 64, 64, true, 0, kNoPadding, MaskKind::None, BHSD, false,
                DType::F32});
  check_kernel({2, 4, 1, 17, 17, 80, 80, false, 0, DType::BOOL, MaskKind::None, BSHD, true,
                DType::F32});
  check_kernel({1, 2, 2, 200, 200, 128, 128, true, 7, kNoPadding, MaskKind::None, BHSD, true,
                DType::F32});
  check_kernel({1, 3, 3, 40, 23, 33, 33, false, 0, kNoPadding, MaskKind::None, BSHD, false,
                DType::F32});  // Sq > Sk, every query sees every key
  check_kernel({1, 3, 3, 40, 23, 33, 33, true, 0, kNoPadding, MaskKind::None, BHSD, false,
                DType::F32});  // Sq > Sk causal: the first 17 queries see nothing
  check_kernel({2, 2, 1, 9, 12, 512, 512, true, 0, DType::I64, MaskKind::None, BHSD, false,
                DType::F32});  // the widest head the kernel takes
  check_kernel({1, 2, 2, 7, 9, 20, 48, false, 0, kNoPadding, MaskKind::None, BSHD, false,
                DType::F32});  // v_dim != head_dim
  check_kernel({1, 2, 1, 3, 5, 1, 1, true, 0, kNoPadding, MaskKind::None, BHSD, false,
                DType::F32});  // head_dim 1
}

TEST_F(CudaAttention, KernelDecodeAgainstACache) {
  // Sq = 1 (and 5) against a longer cache: bottom-right alignment puts the queries last.
  check_kernel({2, 8, 2, 1, 33, 64, 64, true, 0, DType::I32, MaskKind::None, BHSD, false,
                DType::F32});
  check_kernel({1, 4, 1, 5, 300, 80, 80, true, 64, kNoPadding, MaskKind::None, BSHD, false,
                DType::F16});
  check_kernel({3, 4, 4, 1, 1000, 128, 128, true, 0, DType::U8, MaskKind::None, BSHD, true,
                DType::BF16});
}

TEST_F(CudaAttention, KernelMasks) {
  check_kernel({2, 4, 2, 13, 21, 64, 64, false, 0, DType::I8, MaskKind::BoolPerBatch, BHSD, false,
                DType::F32});
  check_kernel({2, 4, 2, 13, 21, 64, 64, true, 0, kNoPadding, MaskKind::AdditiveF32Shared, BSHD,
                true, DType::F32});
  check_kernel({2, 4, 4, 11, 11, 96, 96, false, 4, DType::BOOL, MaskKind::AdditiveBF16Full, BHSD,
                false, DType::F32});
  check_kernel({1, 6, 2, 17, 30, 80, 80, true, 0, kNoPadding, MaskKind::BoolPerBatch, BSHD, false,
                DType::BF16});
}

TEST_F(CudaAttention, KernelHalfPrecision) {
  for (DType dtype : {DType::F16, DType::BF16}) {
    check_kernel({2, 8, 2, 37, 37, 80, 80, true, 0, kNoPadding, MaskKind::None, BHSD, false,
                  dtype});
    check_kernel({1, 4, 4, 17, 17, 128, 128, false, 0, DType::BOOL, MaskKind::None, BSHD, true,
                  dtype});
    check_kernel({1, 2, 1, 100, 100, 256, 256, true, 31, kNoPadding, MaskKind::None, BHSD, true,
                  dtype});
  }
}

// hfport::attention on CUDA tensors against the CPU op on the same values.
TEST_F(CudaAttention, EntryPointDispatchesToTheDevice) {
  const int64_t B = 2, Hq = 4, Hkv = 2, Sq = 9, Sk = 14, D = 40;
  // q's last dimension has stride 2 (every other column of a wider tensor): copied on the device.
  const Tensor q_wide = random_tensor(DType::F32, {B, Hq, Sq, 2 * D});
  const Tensor q = q_wide.slice(3, 0, 2 * D, 2);
  const Tensor k = random_tensor(DType::F32, {B, Hkv, Sk, D});
  const Tensor v = random_tensor(DType::F32, {B, Hkv, Sk, D});
  AttentionOptions options;
  options.causal = true;
  options.return_lse = true;
  options.key_padding_mask = Tensor::empty(DType::I64, {B, Sk});
  for (int64_t i = 0; i < B * Sk; ++i) {
    options.key_padding_mask.data_as<int64_t>()[i] = i % 5 == 1 ? 0 : 1;
  }
  options.attn_mask = random_tensor(DType::F16, {Sq, Sk});
  const hfport::AttentionResult want = hfport::attention(q, k, v, options);

  AttentionOptions on_device = options;
  on_device.key_padding_mask = upload(options.key_padding_mask);
  on_device.attn_mask = upload(options.attn_mask);
  const Tensor dq = upload(q_wide).slice(3, 0, 2 * D, 2);
  const hfport::AttentionResult got = hfport::attention(dq, upload(k), upload(v), on_device);
  ASSERT_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(got.out.device(), kGpu);
  EXPECT_EQ(got.lse.device(), kGpu);
  EXPECT_EQ(got.out.shape(), want.out.shape());
  EXPECT_LT(rel_l2(download(got.out), want.out), hfport_test::kF32Tolerance);
  EXPECT_LT(rel_l2(download(got.lse), want.lse), hfport_test::kF32Tolerance);
}

TEST_F(CudaAttention, EntryPointRejectsMixedDevices) {
  const Tensor q = random_tensor(DType::F32, {1, 2, 4, 16});
  const Tensor dq = upload(q);
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::attention(dq, q, dq); },
      {"attention: all tensors must be on one device", "q is on cuda:0", "k on cpu"}));
  AttentionOptions options;
  options.key_padding_mask = Tensor::zeros(DType::BOOL, {1, 4});
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::attention(dq, dq, dq, options); }, {"key_padding_mask on cpu"}));
  EXPECT_TRUE(throws_exactly<hfport::DeviceError>(
      [&] { hfport::attention_reference(dq, dq, dq); }, {"attention_reference", "cuda:0"}));
}

// The launcher's own checks run before any CUDA call, so they need no device.
TEST(CudaAttentionArguments, HeadDimAboveTheLimitIsAnArgumentError) {
  AttentionParams p;
  p.batch = 1, p.q_heads = 1, p.kv_heads = 1, p.q_len = 1, p.kv_len = 1;
  p.head_dim = hfport::cuda::kMaxSimpleHeadDim + 1, p.v_dim = 64;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::attention_simple(p, nullptr); },
      {"attention (CUDA)", "head_dim in [1, 512]", "got head_dim 513, v_dim 64"}));
  p.head_dim = 64, p.v_dim = 600;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::attention_simple(p, nullptr); }, {"got head_dim 64, v_dim 600"}));
  p.v_dim = 64;
  p.dtype = DType::F64;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::attention_simple(p, nullptr); }, {"q must be F32, F16 or BF16, got F64"}));
  p.dtype = DType::F32;
  p.mask = &p;  // never read: the dtype check comes first
  p.mask_dtype = DType::I32;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::attention_simple(p, nullptr); }, {"attn_mask must be BOOL", "got I32"}));
  p.mask = nullptr;
  p.key_padding = &p;
  p.key_padding_dtype = DType::F32;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::attention_simple(p, nullptr); },
      {"key_padding_mask must be BOOL, U8, I8, I32 or I64, got F32"}));
  p.key_padding = nullptr;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::cuda::attention_simple(p, nullptr); }, {"must be device pointers"}));
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
