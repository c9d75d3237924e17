// The simple attention kernel: every case the op (ops/attention.h) takes on the CPU, on the GPU,
// written to be checked by reading rather than to be fast. The fused tensor-core kernel
// (flash_attention.h, issue 7) is the fast path; this one is the correct path and its fallback.
//
// Work split: one warp per query row. A row is (batch b, query head h, query i); rows are
// numbered r = (b * Hq + h) * Sq + i, so neighbouring warps read the same k/v head and share it
// through L1/L2. Blocks hold kWarpsPerBlock warps and walk the rows grid-stride, so any
// B * Hq * Sq fits the 1-D grid. Warps never talk to each other: no shared memory, no barrier.
//
// Inside a warp the head dimension is split across the lanes: lane l owns features
// d = l, l + 32, l + 64, ... of q (scaled, in registers) and of the output accumulator, so every
// k and v row is read coalesced, in its own dtype and through its own strides. kChunks = features
// per lane (1, 2, 4, 8 or 16; 16 * 32 = kMaxSimpleHeadDim = 512) is a template argument so the
// per-lane arrays stay in registers.
//
// Per key j, in key order (the CPU op's online softmax, one key at a time):
//   s = sum_d q[d] k[j][d]               lane partial sums, reduced across the warp by shuffles;
//                                        lane 0's sum is broadcast so the warp agrees bit for bit
//   hidden keys are skipped; an additive mask is added to s
//   if s > m: rescale l and the accumulator by 2^(m - s), m = s
//   p = 2^(s - m); l += p; acc += p * v[j]
// and the row ends with acc / l, or zeros and lse = -inf when no key was visible (l == 0).
// Scores live in the log2 domain as on the CPU: q is multiplied by scale * log2(e) when loaded,
// an additive mask by log2(e) when added, and lse = (m + log2 l) * ln 2. All arithmetic is f32.
//
// Visibility (the CPU op's rule, word for word): query i sits at position pos = i + (Sk - Sq)
// (bottom-right alignment: the queries are the last Sq of the Sk positions). Key j is hidden when
//   causal and j > pos;
//   sliding_window > 0 and pos - j >= sliding_window (Mistral: a query at pos sees (pos - w, pos]);
//   key_padding[b, j] == 0;
//   a bool attn_mask[b, h, i, j] is false (an additive mask of -inf hides it through s = -inf).
// Causal and the window only narrow the key range [key_begin, key_end) the loop walks; the rule is
// still applied to every key inside it.
#include "kernels/cuda/attention.h"

#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/float_math.cuh"

namespace hfport::cuda {

namespace {

constexpr int kWarpSize = 32;
constexpr int kWarpsPerBlock = 4;
constexpr unsigned kFullWarp = 0xffffffffu;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// key_padding_mask element `index` is "keep" (nonzero); dtypes as the CPU op accepts them.
__device__ __forceinline__ bool keep_key(const void* mask, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::I32: return static_cast<const int32_t*>(mask)[index] != 0;
    case DType::I64: return static_cast<const int64_t*>(mask)[index] != 0;
    default: return static_cast<const uint8_t*>(mask)[index] != 0;  // BOOL, U8, I8
  }
}

// The warp's sum of `v`, equal on every lane (lane 0's value, broadcast).
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(kFullWarp, v, offset);
  }
  return __shfl_sync(kFullWarp, v, 0);
}

template <typename T, int kChunks>
__global__ void __launch_bounds__(kWarpsPerBlock * kWarpSize)
    attention_simple_kernel(AttentionParams p) {
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);
  T* out = static_cast<T*>(p.out);
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t first_row =
      static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const int64_t row_step = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  const int64_t rows = p.batch * p.q_heads * p.q_len;
  const int64_t group = p.q_heads / p.kv_heads;
  const int64_t offset = p.kv_len - p.q_len;
  const float q_scale = p.scale * kLog2e;
  const float neg_inf = -INFINITY;

  // Every lane of a warp has the same row, so every branch on row data below is warp-uniform.
  for (int64_t r = first_row; r < rows; r += row_step) {
    const int64_t i = r % p.q_len;
    const int64_t h = (r / p.q_len) % p.q_heads;
    const int64_t b = r / (p.q_len * p.q_heads);
    const int64_t hk = h / group;
    const int64_t pos = i + offset;

    float qs[kChunks];
    float acc[kChunks];
    const T* q_row = q + b * p.q_stride[0] + h * p.q_stride[1] + i * p.q_stride[2];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t d = lane + c * kWarpSize;
      qs[c] = d < p.head_dim ? load_float(q_row, d) * q_scale : 0.0f;
      acc[c] = 0.0f;
    }

    int64_t key_begin = 0;
    int64_t key_end = p.kv_len;
    if (p.causal && pos + 1 < key_end) key_end = pos + 1;
    if (p.sliding_window > 0 && pos - p.sliding_window + 1 > key_begin) {
      key_begin = pos - p.sliding_window + 1;
    }

    const T* k_head = k + b * p.k_stride[0] + hk * p.k_stride[1];
    const T* v_head = v + b * p.v_stride[0] + hk * p.v_stride[1];
    float m = neg_inf;  // running maximum of the visible scores (log2 domain)
    float l = 0.0f;     // running sum of 2^(s - m)
    for (int64_t j = key_begin; j < key_end; ++j) {
      bool hidden = (p.causal && j > pos) || (p.sliding_window > 0 && pos - j >= p.sliding_window);
      if (!hidden && p.key_padding) {
        hidden = !keep_key(p.key_padding, p.key_padding_dtype,
                           b * p.key_padding_stride[0] + j * p.key_padding_stride[1]);
      }
      const int64_t mask_index = b * p.mask_stride[0] + h * p.mask_stride[1] +
                                 i * p.mask_stride[2] + j * p.mask_stride[3];
      if (!hidden && p.mask && p.mask_dtype == DType::BOOL) {
        hidden = static_cast<const uint8_t*>(p.mask)[mask_index] == 0;
      }
      if (hidden) continue;

      const T* k_row = k_head + j * p.k_stride[2];
      float partial = 0.0f;
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int64_t d = lane + c * kWarpSize;
        if (d < p.head_dim) partial += qs[c] * load_float(k_row, d);
      }
      float s = warp_sum(partial);
      if (p.mask && p.mask_dtype != DType::BOOL) {
        s += load_any(p.mask, p.mask_dtype, mask_index) * kLog2e;
      }
      if (s == neg_inf) continue;  // an additive -inf hides the key like a false bool

      if (s > m) {
        const float correction = exp2f(m - s);  // 0 while m is still -inf (l and acc are 0)
        l *= correction;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) acc[c] *= correction;
        m = s;
      }
      const float weight = exp2f(s - m);
      l += weight;
      const T* v_row = v_head + j * p.v_stride[2];
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int64_t d = lane + c * kWarpSize;
        if (d < p.v_dim) acc[c] += weight * load_float(v_row, d);
      }
    }

    // l > 0 exactly when some key was visible (its weight 2^(s - m) at s = m is 1).
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T* out_row = out + b * p.out_stride[0] + h * p.out_stride[1] + i * p.out_stride[2];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t d = lane + c * kWarpSize;
      if (d < p.v_dim) store_float(out_row, d, acc[c] * inv);
    }
    if (p.lse && lane == 0) {
      p.lse[(b * p.q_heads + h) * p.q_len + i] = l > 0.0f ? (m + log2f(l)) * kLn2 : neg_inf;
    }
  }
}

std::string dim_text(const AttentionParams& p) {
  return "head_dim " + std::to_string(p.head_dim) + ", v_dim " + std::to_string(p.v_dim);
}

void check_params(const AttentionParams& p) {
  require_float_dtype("attention", "q", p.dtype);
  if (p.head_dim < 1 || p.v_dim < 0 || p.head_dim > kMaxSimpleHeadDim ||
      p.v_dim > kMaxSimpleHeadDim) {
    throw ArgumentError("attention (CUDA): the simple kernel takes head_dim in [1, " +
                        std::to_string(kMaxSimpleHeadDim) + "] and v_dim in [0, " +
                        std::to_string(kMaxSimpleHeadDim) + "], got " + dim_text(p));
  }
  if (p.kv_heads < 1 || p.q_heads % p.kv_heads != 0) {
    throw ArgumentError("attention (CUDA): kv_heads " + std::to_string(p.kv_heads) +
                        " must be at least 1 and divide q_heads " + std::to_string(p.q_heads));
  }
  if (p.mask && p.mask_dtype != DType::BOOL && !is_float_dtype(p.mask_dtype)) {
    throw ArgumentError("attention (CUDA): attn_mask must be BOOL, F32, F16 or BF16, got " +
                        std::string(dtype_name(p.mask_dtype)));
  }
  const DType pad = p.key_padding_dtype;
  if (p.key_padding && pad != DType::BOOL && pad != DType::U8 && pad != DType::I8 &&
      pad != DType::I32 && pad != DType::I64) {
    throw ArgumentError("attention (CUDA): key_padding_mask must be BOOL, U8, I8, I32 or I64, got " +
                        std::string(dtype_name(pad)));
  }
  const bool rows = p.batch > 0 && p.q_heads > 0 && p.q_len > 0;
  if (rows && (!p.q || (p.kv_len > 0 && !p.k) || (p.kv_len > 0 && p.v_dim > 0 && !p.v) ||
               (p.v_dim > 0 && !p.out))) {
    throw ArgumentError("attention (CUDA): q, k, v and out must be device pointers");
  }
}

// Features per lane: the smallest of 1, 2, 4, 8, 16 whose 32 lanes cover both head dims.
int chunks_for(const AttentionParams& p) {
  const int64_t widest = p.head_dim > p.v_dim ? p.head_dim : p.v_dim;
  int chunks = 1;
  while (chunks * kWarpSize < widest) chunks *= 2;
  return chunks;
}

template <typename T, int kChunks>
void launch(const AttentionParams& p, cudaStream_t stream) {
  const int64_t rows = p.batch * p.q_heads * p.q_len;
  attention_simple_kernel<T, kChunks>
      <<<grid_for(rows, kWarpsPerBlock), kWarpsPerBlock * kWarpSize, 0, stream>>>(p);
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void attention_simple(const AttentionParams& p, void* stream_ptr) {
  check_params(p);
  if (p.batch == 0 || p.q_heads == 0 || p.q_len == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  dispatch_float_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (chunks_for(p)) {
      case 1: launch<T, 1>(p, stream); break;
      case 2: launch<T, 2>(p, stream); break;
      case 4: launch<T, 4>(p, stream); break;
      case 8: launch<T, 8>(p, stream); break;
      default: launch<T, 16>(p, stream); break;
    }
  });
}

}  // namespace hfport::cuda
