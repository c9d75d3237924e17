// The CUDA bf16 -> f32 kernel against hfport::cast on the host, bit for bit: odd sizes (n not a
// multiple of 4, so the vector path leaves a tail), source and destination offset by one to three
// elements (so the vector path is refused and the scalar one runs), every bf16 pattern including
// NaN payloads, output poisoned with NaN first and guard words around it checked afterwards.
// Without a visible GPU the tests skip; without CUDA at build time only the build-info test runs.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/cast.h"
#include "core/tensor.h"

#ifdef HFPORT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "cuda_test_support.h"

#include "core/cuda/cast.h"
#endif

namespace {

TEST(CudaBuildInfo, AgreesWithTheBuild) {
#ifdef HFPORT_WITH_CUDA
  EXPECT_TRUE(hfport::built_with_cuda());
#else
  EXPECT_FALSE(hfport::built_with_cuda());
  EXPECT_FALSE(hfport::built_with_cublaslt());
  EXPECT_EQ(hfport::cuda_device_count(), 0);
#endif
  EXPECT_GE(hfport::cuda_device_count(), 0);
  EXPECT_FALSE(hfport::version().empty());
}

#ifdef HFPORT_WITH_CUDA

class CudaCast : public hfport_test::CudaDeviceTest {};

// A device buffer freed on scope exit.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t count) {
    void* raw = nullptr;
    if (cudaMalloc(&raw, count * sizeof(T)) == cudaSuccess) ptr = static_cast<T*>(raw);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

constexpr uint32_t kPoison = 0xFFFFFFFFu;  // a NaN the kernel never writes for these inputs
constexpr size_t kGuard = 8;               // floats checked on each side of the output

std::vector<uint16_t> bf16_inputs(size_t n, std::mt19937& rng) {
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    // Every pattern appears when n >= 65536; smaller sizes get random ones.
    v[i] = n >= 65536 ? static_cast<uint16_t>(i * 40503u) : static_cast<uint16_t>(rng());
  }
  // Non-finite and subnormal values in the first elements, whatever the size.
  const uint16_t specials[] = {0x7FC1, 0xFF80, 0x7F80, 0x0001, 0x8000, 0x7F81};
  for (size_t i = 0; i < n && i < std::size(specials); ++i) v[i] = specials[i];
  return v;
}

// Host reference: hfport::cast (itself checked against field-decoded values in
// test_cast_stats.cpp), as raw f32 bits.
std::vector<uint32_t> host_reference(const std::vector<uint16_t>& src) {
  hfport::Tensor in =
      hfport::Tensor::empty(hfport::DType::BF16, {static_cast<int64_t>(src.size())});
  if (!src.empty()) std::memcpy(in.data(), src.data(), src.size() * 2);
  const hfport::Tensor out = hfport::cast(in, hfport::DType::F32);
  std::vector<uint32_t> bits(src.size());
  if (!src.empty()) std::memcpy(bits.data(), out.data(), bits.size() * 4);
  return bits;
}

// Casts `src` on the device with the input at element offset `src_shift` and the output at
// `dst_shift`, and checks the output and the guards around it.
void check_cast(const std::vector<uint16_t>& src, size_t src_shift, size_t dst_shift,
                cudaStream_t stream) {
  const size_t n = src.size();
  SCOPED_TRACE("n=" + std::to_string(n) + " src_shift=" + std::to_string(src_shift) +
               " dst_shift=" + std::to_string(dst_shift));
  DeviceBuffer<uint16_t> d_src(n + src_shift + 1);
  DeviceBuffer<uint32_t> d_dst(kGuard + dst_shift + n + kGuard);
  ASSERT_NE(d_src.ptr, nullptr);
  ASSERT_NE(d_dst.ptr, nullptr);
  const size_t dst_words = kGuard + dst_shift + n + kGuard;
  ASSERT_CUDA(cudaMemset(d_dst.ptr, 0xFF, dst_words * 4));
  if (n > 0) {
    ASSERT_CUDA(cudaMemcpy(d_src.ptr + src_shift, src.data(), n * 2, cudaMemcpyHostToDevice));
  }

  hfport::cuda::CastBf16ToF32Params params;
  params.src = d_src.ptr + src_shift;
  params.dst = reinterpret_cast<float*>(d_dst.ptr + kGuard + dst_shift);
  params.n = static_cast<int64_t>(n);
  ASSERT_NO_THROW(hfport::cuda::cast_bf16_to_f32(params, stream));
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  ASSERT_CUDA(cudaGetLastError());

  std::vector<uint32_t> got(dst_words);
  ASSERT_CUDA(cudaMemcpy(got.data(), d_dst.ptr, dst_words * 4, cudaMemcpyDeviceToHost));
  const std::vector<uint32_t> want = host_reference(src);
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) {
    if (got[kGuard + dst_shift + i] != want[i] && ++mismatches <= 5) {
      ADD_FAILURE() << "element " << i << " (bf16 0x" << std::hex << src[i] << "): got 0x"
                    << got[kGuard + dst_shift + i] << ", want 0x" << want[i];
    }
  }
  EXPECT_EQ(mismatches, 0u);
  for (size_t i = 0; i < kGuard + dst_shift; ++i) {
    EXPECT_EQ(got[i], kPoison) << "guard word " << i << " before the output was written";
  }
  for (size_t i = kGuard + dst_shift + n; i < dst_words; ++i) {
    EXPECT_EQ(got[i], kPoison) << "guard word " << i << " after the output was written";
  }
}

TEST_F(CudaCast, MatchesHostCastOnOddSizesAndUnalignedPointers) {
  std::mt19937 rng(31);
  for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{5}, size_t{7}, size_t{8},
                   size_t{9}, size_t{255}, size_t{1023}, size_t{4099}}) {
    const std::vector<uint16_t> src = bf16_inputs(n, rng);
    for (size_t src_shift : {0, 1, 2, 3}) {
      for (size_t dst_shift : {0, 1, 2, 3}) {
        check_cast(src, src_shift, dst_shift, nullptr);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_F(CudaCast, EveryPatternAndLargeGridsOnAStream) {
  std::mt19937 rng(32);
  cudaStream_t stream = nullptr;
  ASSERT_CUDA(cudaStreamCreate(&stream));
  // 65536 patterns in a ragged length; then more elements than 65535 blocks x 256 threads x 4
  // cover, so the grid-stride loops wrap.
  for (size_t n : {size_t{65536 + 3}, size_t{65535} * 256 * 4 + 4097}) {
    const std::vector<uint16_t> src = bf16_inputs(n, rng);
    check_cast(src, 0, 0, stream);
    check_cast(src, 1, 0, stream);
  }
  ASSERT_CUDA(cudaStreamDestroy(stream));
}

TEST_F(CudaCast, EmptyLaunchWritesNothing) {
  check_cast({}, 0, 0, nullptr);
  DeviceBuffer<uint32_t> d_dst(4);
  ASSERT_NE(d_dst.ptr, nullptr);
  ASSERT_CUDA(cudaMemset(d_dst.ptr, 0xFF, 16));
  hfport::cuda::CastBf16ToF32Params params{nullptr, reinterpret_cast<float*>(d_dst.ptr), -5};
  ASSERT_NO_THROW(hfport::cuda::cast_bf16_to_f32(params, nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  uint32_t got[4];
  ASSERT_CUDA(cudaMemcpy(got, d_dst.ptr, 16, cudaMemcpyDeviceToHost));
  for (uint32_t g : got) EXPECT_EQ(g, kPoison);
}

#endif  // HFPORT_WITH_CUDA

}  // namespace
