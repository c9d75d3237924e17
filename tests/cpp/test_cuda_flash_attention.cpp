// The CUDA flash attention kernel (kernels/cuda/flash_attention.h) against the float64 CPU
// reference (attention_reference) on small, odd shapes: every head dim it is built for, f16 and
// bf16, causal with Sq != Sk, sliding window, key padding, GQA/MQA, strided BSHD views. Outputs
// are poisoned with NaN before each run, each case runs twice and must give the same bits (no
// race between warps), and the shapes are small enough to run under compute-sanitizer:
//
//   compute-sanitizer --tool racecheck ./build/dev/hfport_tests --gtest_filter='FlashAttentionCuda*'
//   compute-sanitizer --tool memcheck  ./build/dev/hfport_tests --gtest_filter='FlashAttentionCuda*'
//
// The index arithmetic itself is checked without a GPU in test_flash_fragments.cpp. Without a
// visible GPU these tests skip; without CUDA at build time the file holds no test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernel_test_data.h"
#include "ops/attention.h"

#ifdef HFPORT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "cuda_test_support.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention.h"
#endif

namespace {

#ifdef HFPORT_WITH_CUDA

using hfport::AttentionLayout;
using hfport::AttentionParams;
using hfport::DType;
using hfport::Shape;
using hfport::Tensor;

class FlashAttentionCuda : public hfport_test::CudaDeviceTest {};

// A contiguous host tensor's bytes on the device, freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const Tensor& host) : bytes_(host.nbytes()) {
    HFPORT_CUDA_CHECK(cudaMalloc(&ptr_, bytes_ > 0 ? bytes_ : 1));
    if (bytes_ > 0) HFPORT_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  // The device bytes back into a host tensor of `like`'s dtype and shape.
  Tensor download(const Tensor& like) const {
    Tensor t = Tensor::empty(like.dtype(), like.shape());
    if (bytes_ > 0) HFPORT_CUDA_CHECK(cudaMemcpy(t.data(), ptr_, bytes_, cudaMemcpyDeviceToHost));
    return t;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct FlashCase {
  DType dtype;
  int64_t head_dim, batch, q_heads, kv_heads, q_len, kv_len;
  bool causal;
  int64_t window;        // 0: none
  bool key_padding;      // an I64 [B, Sk] mask with some zeros
  AttentionLayout layout;
};

std::string describe(const FlashCase& c) {
  return std::string(hfport::dtype_name(c.dtype)) + " D " + std::to_string(c.head_dim) + " B " +
         std::to_string(c.batch) + " H " + std::to_string(c.q_heads) + "/" +
         std::to_string(c.kv_heads) + " Sq " + std::to_string(c.q_len) + " Sk " +
         std::to_string(c.kv_len) + (c.causal ? " causal" : "") + " window " +
         std::to_string(c.window) + (c.key_padding ? " padding" : "") +
         (c.layout == AttentionLayout::BHSD ? " bhsd" : " bshd");
}

Shape dims(const FlashCase& c, int64_t heads, int64_t seq) {
  return c.layout == AttentionLayout::BHSD ? Shape{c.batch, heads, seq, c.head_dim}
                                           : Shape{c.batch, seq, heads, c.head_dim};
}

// (batch, head, seq) element strides of a contiguous tensor of `shape` in the case's layout.
void bhsd_strides(const FlashCase& c, const Shape& shape, int64_t (&out)[3]) {
  const int64_t d = shape[3];
  if (c.layout == AttentionLayout::BHSD) {
    out[0] = shape[1] * shape[2] * d;
    out[1] = shape[2] * d;
    out[2] = d;
  } else {
    out[0] = shape[1] * shape[2] * d;
    out[1] = d;
    out[2] = shape[2] * d;
  }
}

void check_case(const FlashCase& c) {
  SCOPED_TRACE(describe(c));
  const Tensor q = hfport_test::random_tensor(c.dtype, dims(c, c.q_heads, c.q_len));
  const Tensor k = hfport_test::random_tensor(c.dtype, dims(c, c.kv_heads, c.kv_len));
  const Tensor v = hfport_test::random_tensor(c.dtype, dims(c, c.kv_heads, c.kv_len));
  Tensor pad = Tensor::empty(DType::I64, {c.batch, c.kv_len});
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t j = 0; j < c.kv_len; ++j) {
      pad.data_as<int64_t>()[b * c.kv_len + j] = (j * 7 + b * 3) % 5 == 0 ? 0 : 1;
    }
  }

  hfport::AttentionOptions options;
  options.causal = c.causal;
  if (c.window > 0) options.sliding_window = c.window;
  if (c.key_padding) options.key_padding_mask = pad;
  options.layout = c.layout;
  options.return_lse = true;
  const hfport::AttentionResult want = hfport::attention_reference(q, k, v, options);

  DeviceBuffer d_q(q), d_k(k), d_v(v), d_pad(pad);
  const Tensor out_poison = hfport_test::poisoned(c.dtype, dims(c, c.q_heads, c.q_len));
  const Tensor lse_poison = hfport_test::poisoned(DType::F32, {c.batch, c.q_heads, c.q_len});
  AttentionParams p;
  p.batch = c.batch;
  p.q_heads = c.q_heads;
  p.kv_heads = c.kv_heads;
  p.q_len = c.q_len;
  p.kv_len = c.kv_len;
  p.head_dim = c.head_dim;
  p.v_dim = c.head_dim;
  p.dtype = c.dtype;
  p.q = d_q.get();
  p.k = d_k.get();
  p.v = d_v.get();
  bhsd_strides(c, q.shape(), p.q_stride);
  bhsd_strides(c, k.shape(), p.k_stride);
  bhsd_strides(c, v.shape(), p.v_stride);
  bhsd_strides(c, out_poison.shape(), p.out_stride);
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  p.causal = c.causal;
  p.sliding_window = c.window;
  if (c.key_padding) {
    p.key_padding = d_pad.get();
    p.key_padding_dtype = DType::I64;
    p.key_padding_stride[0] = c.kv_len;
    p.key_padding_stride[1] = 1;
  }
  ASSERT_TRUE(hfport::cuda::flash_attention_supports(p));

  Tensor first_out, first_lse;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer d_out(out_poison), d_lse(lse_poison);
    p.out = d_out.get();
    p.lse = static_cast<float*>(d_lse.get());
    hfport::cuda::flash_attention(p, nullptr);
    HFPORT_CUDA_CHECK(cudaDeviceSynchronize());
    const Tensor out = d_out.download(out_poison);
    const Tensor lse = d_lse.download(lse_poison);
    if (run == 0) {
      EXPECT_LT(hfport_test::rel_l2(out, want.out), hfport_test::kBF16Tolerance);
      for (int64_t i = 0; i < lse.numel(); ++i) {
        const double got = lse.data_as<float>()[i];
        const double expected = want.lse.data_as<double>()[i];
        if (std::isinf(expected)) {
          EXPECT_EQ(got, expected) << "lse " << i;
        } else {
          EXPECT_NEAR(got, expected, 1e-3 * (1.0 + std::fabs(expected))) << "lse " << i;
        }
      }
      first_out = out;
      first_lse = lse;
    } else {
      EXPECT_EQ(std::memcmp(out.data(), first_out.data(), out.nbytes()), 0) << "run 2 differs";
      EXPECT_EQ(std::memcmp(lse.data(), first_lse.data(), lse.nbytes()), 0) << "run 2 differs";
    }
  }
}

constexpr AttentionLayout kBhsd = AttentionLayout::BHSD;
constexpr AttentionLayout kBshd = AttentionLayout::BSHD;

TEST_F(FlashAttentionCuda, EveryHeadDimMatchesTheReference) {
  for (int64_t d : {64, 80, 96, 128, 256}) {
    for (DType dtype : {DType::BF16, DType::F16}) {
      check_case({dtype, d, 1, 2, 1, 70, 70, false, 0, false, kBhsd});
      check_case({dtype, d, 1, 2, 2, 33, 130, true, 0, false, kBshd});
    }
  }
}

TEST_F(FlashAttentionCuda, CausalWindowPaddingAndGqa) {
  const DType bf16 = DType::BF16;
  check_case({bf16, 80, 2, 4, 2, 1, 1, true, 0, false, kBhsd});
  check_case({bf16, 80, 2, 4, 2, 17, 17, true, 0, true, kBhsd});
  check_case({bf16, 80, 1, 8, 1, 1, 200, true, 0, true, kBshd});     // MQA decode
  check_case({bf16, 64, 1, 6, 2, 3, 150, true, 32, false, kBhsd});   // decode, window
  check_case({bf16, 128, 1, 2, 2, 150, 150, true, 17, true, kBshd});
  check_case({bf16, 128, 1, 2, 2, 150, 150, false, 17, false, kBhsd});  // window alone
  check_case({bf16, 96, 1, 3, 3, 140, 40, true, 0, false, kBhsd});   // Sq > Sk: rows see none
  check_case({bf16, 256, 1, 4, 1, 45, 77, false, 0, true, kBshd});
}

TEST_F(FlashAttentionCuda, SupportsTurnsAwayWhatItCannotRun) {
  AttentionParams p;
  p.batch = 1;
  p.q_heads = 1;
  p.kv_heads = 1;
  p.q_len = 4;
  p.kv_len = 4;
  p.head_dim = 64;
  p.v_dim = 64;
  p.dtype = DType::BF16;
  alignas(16) static unsigned char storage[64];
  p.q = p.k = p.v = storage;
  p.out = storage;
  for (int i = 0; i < 3; ++i) p.q_stride[i] = p.k_stride[i] = p.v_stride[i] = p.out_stride[i] = 64;
  EXPECT_TRUE(hfport::cuda::flash_attention_supports(p));

  AttentionParams f32 = p;
  f32.dtype = DType::F32;
  EXPECT_FALSE(hfport::cuda::flash_attention_supports(f32));
  EXPECT_THROW(hfport::cuda::flash_attention(f32, nullptr), hfport::ArgumentError);
  AttentionParams odd_dim = p;
  odd_dim.head_dim = odd_dim.v_dim = 72;
  EXPECT_FALSE(hfport::cuda::flash_attention_supports(odd_dim));
  AttentionParams masked = p;
  masked.mask = storage;
  EXPECT_FALSE(hfport::cuda::flash_attention_supports(masked));
  AttentionParams misaligned = p;
  misaligned.k = storage + 2;
  EXPECT_FALSE(hfport::cuda::flash_attention_supports(misaligned));
  AttentionParams odd_stride = p;
  odd_stride.v_stride[2] = 72;  // a multiple of 8 elements (16 bytes), not of the row
  EXPECT_TRUE(hfport::cuda::flash_attention_supports(odd_stride));
  odd_stride.v_stride[2] = 66;
  EXPECT_FALSE(hfport::cuda::flash_attention_supports(odd_stride));
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
