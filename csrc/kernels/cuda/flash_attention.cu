// Flash attention forward on tensor cores (issue 7): out = softmax(scale q k^T + masks) v for
// f16/bf16 q, k, v with f32 accumulation, on the AttentionParams of kernels/attention_params.h;
// ops/attention.h's prose fixes the semantics this kernel follows (bottom-right causal alignment
// when Sq != Sk, Mistral's sliding window, key padding, zeros and a logsumexp of -inf for a query
// that sees no key).
//
// Work. One thread block per (batch, kv head, block of 128 rows), where the rows of a kv head
// are its group of Hq / Hkv query heads stacked (flash_attention_fragments.h, packed_row):
// GQA/MQA read each K/V tile once per group, and a decode step (q_len = 1) fills one row per query
// head of the group. A warp owns kMTiles m16 tiles of rows for the whole kernel (4 warps x 32 rows
// for head dims up to 128, 8 x 16 for 256; FlashTraits), so no row state is ever shared between
// warps, and each K/V fragment it reads from shared memory feeds kMTiles mma. Blocks are launched
// heaviest first (the last query blocks see the most keys under causal masking).
//
// Per block: the Q tile is copied to shared memory once (cp.async, rows past the end zero
// filled); where registers allow (FlashTraits::kQInRegisters) each warp then keeps its Q
// fragments in registers, else it re-reads them at every tile. The visible key range (causal,
// window) gives the key tiles to visit; others are skipped. K and V tiles of kBlockN keys are
// double buffered: while a tile is used, the next one is in flight (cp.async, keys past the end
// zero filled, so 0 * V never meets garbage). Per tile, each warp:
//   S = Q K^T         mma.sync m16n8k16 (ldmatrix.x4 fragments of Q and K), f32 accumulators
//   S *= scale log2(e)  so that exp(scale x) becomes exp2
//   masks             only on tiles that causal / the window / the end cut through, or when a
//                     key padding mask is given: -inf, plus a per-key bias of 0 or -inf (padding
//                     and keys past the end) staged in shared memory with the tile
//   online softmax    row max over the quad (two __shfl_xor), m' = max(m, rowmax), p = exp2(S - m'),
//                     l = l exp2(m - m') + rowsum p (the rowsum stays per thread until the end),
//                     O *= exp2(m - m')
//   O += P V          P rounded to the input dtype and reused from the S accumulators as the A
//                     operand (flash_attention_fragments.h: p_register_source), V by ldmatrix.trans
// and at the end O / l goes to shared memory (the warp's own rows of the Q tile) and out to
// global memory in 16-byte rows; lse = (m + log2 l) ln 2. A row whose maximum is still -inf saw
// no key: its p were all exp2(-inf) = 0, and it ends with zeros and lse -inf.
//
// Precision: products and sums in f32 on the tensor cores; p is rounded to f16/bf16 for P V (as
// FlashAttention-2 does), the normaliser l sums the unrounded p.
//
// Shared memory rows are padded by 16 bytes (FlashTraits::kRowStride) so that ldmatrix reads are
// free of bank conflicts without a swizzle. Template parameters are the element type and the head
// dim only (2 x 5 instantiations); masks and padding are run-time flags, uniform per block.
#include "kernels/cuda/flash_attention.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention_fragments.h"
#include "kernels/cuda/flash_attention_tile.cuh"

namespace hfport::cuda {

namespace {

using flash::FlashTraits;

// Longest q_len, kv_len and rows per kv head (group * q_len) the kernel takes: positions and
// position differences stay in int.
constexpr int64_t kMaxLength = int64_t{1} << 30;
constexpr int64_t kMaxGridYZ = 65535;

// AttentionParams as the kernel reads them: the same pointers and strides, derived sizes in int.
struct FlashParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;  // [B, Hq, Sq] contiguous, or null
  int64_t q_stride[3];
  int64_t k_stride[3];
  int64_t v_stride[3];
  int64_t out_stride[3];
  const void* key_padding;  // [B, Sk] nonzero = keep, or null
  DType key_padding_dtype;
  int64_t key_padding_stride[2];
  int q_len;
  int kv_len;
  int q_heads;
  int group;       // query heads per kv head
  int rows_total;  // group * q_len: the rows of one (batch, kv head)
  int offset;      // kv_len - q_len: query i sits at key position i + offset
  int window;      // 0: none; else at most kv_len + 1 (larger windows hide nothing)
  bool causal;
  float scale_log2;  // scale * log2(e)
};

__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000); }

__device__ __forceinline__ bool key_kept(const FlashParams& p, int batch, int key) {
  const int64_t i = batch * p.key_padding_stride[0] + key * p.key_padding_stride[1];
  switch (p.key_padding_dtype) {
    case DType::I32: return static_cast<const int32_t*>(p.key_padding)[i] != 0;
    case DType::I64: return static_cast<const int64_t*>(p.key_padding)[i] != 0;
    default: return static_cast<const uint8_t*>(p.key_padding)[i] != 0;  // BOOL, U8, I8
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(FlashTraits<D>::kThreads, 1)
    flash_forward_kernel(const FlashParams p) {
  using Traits = FlashTraits<D>;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kBlockM = Traits::kBlockM;
  constexpr int kBlockN = Traits::kBlockN;
  constexpr int kMTiles = Traits::kMTiles;
  constexpr int kStride = Traits::kRowStride;
  constexpr int kChunks = D / 8;           // 16-byte chunks per row
  constexpr int kKeyTiles = kBlockN / 8;   // n8 tiles of S
  constexpr int kDimTiles = D / 8;         // n8 tiles of O
  constexpr int kDimSteps = D / 16;        // k16 steps of Q K^T
  constexpr int kKeySteps = kBlockN / 16;  // k16 steps of P V
  constexpr int kQFragments = Traits::kQInRegisters ? kDimSteps : 1;
  static_assert(kBlockN <= kThreads, "one thread per key writes the key biases");
  static_assert(kKeyTiles % 2 == 0 && kDimTiles % 2 == 0, "ldmatrix.x4 loads n8 tiles in pairs");

  extern __shared__ __align__(16) unsigned char shared[];
  T* s_q = reinterpret_cast<T*>(shared);                        // [kBlockM][kStride]
  T* s_k = s_q + Traits::kQElements;                            // [2][kBlockN][kStride]
  T* s_v = s_k + 2 * Traits::kKvElements;                       // [2][kBlockN][kStride]
  float* s_bias = reinterpret_cast<float*>(s_v + 2 * Traits::kKvElements);  // [2][kBlockN]

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int first_row = (gridDim.x - 1 - blockIdx.x) * kBlockM;
  const int kv_head = blockIdx.y;
  const int batch = blockIdx.z;
  const float neg_inf = negative_infinity();

  const T* q = static_cast<const T*>(p.q) + batch * p.q_stride[0];
  const T* k = static_cast<const T*>(p.k) + batch * p.k_stride[0] + kv_head * p.k_stride[1];
  const T* v = static_cast<const T*>(p.v) + batch * p.v_stride[0] + kv_head * p.v_stride[1];

  // The Q tile; rows past rows_total are zero.
  for (int c = tid; c < kBlockM * kChunks; c += kThreads) {
    const int row = c / kChunks;
    const int chunk = c % kChunks;
    const bool valid = first_row + row < p.rows_total;
    const flash::QueryRow query = flash::packed_row(valid ? first_row + row : 0, p.q_len);
    const T* src = q + static_cast<int64_t>(kv_head * p.group + query.head_in_group) * p.q_stride[1] +
                   static_cast<int64_t>(query.index) * p.q_stride[2] + chunk * 8;
    flash::cp_async_16(s_q + row * kStride + chunk * 8, src, valid);
  }
  flash::cp_async_commit();

  const flash::PositionRange positions =
      flash::block_positions(first_row, kBlockM, p.rows_total, p.q_len, p.offset);
  const flash::KeyRange keys = flash::visible_keys(positions, p.kv_len, p.causal, p.window);
  const flash::TileRange key_tiles = flash::key_tiles(keys, kBlockN);
  const int tile_begin = key_tiles.first;
  const int tiles = key_tiles.count;

  // Issues the copies of key tile `tile` into buffer `buffer` and writes its key biases.
  const auto load_kv_tile = [&](int tile, int buffer) {
    const int k0 = tile * kBlockN;
    const int valid_keys = p.kv_len - k0 < kBlockN ? p.kv_len - k0 : kBlockN;
    T* dst_k = s_k + buffer * Traits::kKvElements;
    T* dst_v = s_v + buffer * Traits::kKvElements;
    for (int c = tid; c < kBlockN * kChunks; c += kThreads) {
      const int row = c / kChunks;
      const int chunk = c % kChunks;
      const bool valid = row < valid_keys;
      const int64_t key = k0 + (valid ? row : 0);
      flash::cp_async_16(dst_k + row * kStride + chunk * 8, k + key * p.k_stride[2] + chunk * 8,
                         valid);
      flash::cp_async_16(dst_v + row * kStride + chunk * 8, v + key * p.v_stride[2] + chunk * 8,
                         valid);
    }
    if (tid < kBlockN) {
      const int key = k0 + tid;
      const bool keep = key < p.kv_len && (p.key_padding == nullptr || key_kept(p, batch, key));
      s_bias[buffer * kBlockN + tid] = keep ? 0.0f : neg_inf;
    }
  };

  if (tiles > 0) load_kv_tile(tile_begin, 0);
  flash::cp_async_commit();
  flash::cp_async_wait_all();
  __syncthreads();

  // The first row of each of this warp's m16 tiles (tile m: rows warp_row + 16 m ...).
  const int warp_row = warp * Traits::kRowsPerWarp;
  uint32_t q_fragments[kMTiles][kQFragments][4];
  if constexpr (Traits::kQInRegisters) {
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
      for (int ks = 0; ks < kDimSteps; ++ks) {
        flash::ldmatrix_x4(q_fragments[m][ks],
                           s_q + flash::q_ldmatrix_offset(lane, warp_row + 16 * m, ks, kStride));
      }
    }
  }

  // This thread's rows: in m16 tile m, accumulator elements 0, 1 are in row rows[m][0], elements
  // 2, 3 in rows[m][1].
  int rows[kMTiles][2];
  int row_position[kMTiles][2];
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      rows[m][h] = first_row + warp_row + 16 * m + flash::mma_c_element(lane, 2 * h).row;
      row_position[m][h] = flash::packed_row(rows[m][h], p.q_len).index + p.offset;
    }
  }

  float o[kMTiles][kDimTiles][4];
  float row_max[kMTiles][2];
  float row_sum[kMTiles][2];  // this thread's columns only, until the end
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[m][j][e] = 0.0f;
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      row_max[m][h] = neg_inf;
      row_sum[m][h] = 0.0f;
    }
  }

  for (int t = 0; t < tiles; ++t) {
    const int buffer = t & 1;
    if (t > 0) {
      // Tile t has landed (this thread's copies, then everyone's), and every warp is done with
      // tile t - 1, whose buffer the next copies overwrite.
      flash::cp_async_wait_all();
      __syncthreads();
    }
    if (t + 1 < tiles) load_kv_tile(tile_begin + t + 1, buffer ^ 1);
    flash::cp_async_commit();

    const T* tile_k = s_k + buffer * Traits::kKvElements;
    const T* tile_v = s_v + buffer * Traits::kKvElements;
    const float* bias = s_bias + buffer * kBlockN;
    const int k0 = (tile_begin + t) * kBlockN;

    // S = Q K^T: each K fragment serves all kMTiles m16 tiles.
    float s[kMTiles][kKeyTiles][4];
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[m][j][e] = 0.0f;
      }
    }
#pragma unroll
    for (int ks = 0; ks < kDimSteps; ++ks) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
        if constexpr (Traits::kQInRegisters) {
#pragma unroll
          for (int r = 0; r < 4; ++r) a[m][r] = q_fragments[m][ks][r];
        } else {
          flash::ldmatrix_x4(a[m], s_q + flash::q_ldmatrix_offset(lane, warp_row + 16 * m, ks,
                                                                  kStride));
        }
      }
#pragma unroll
      for (int pair = 0; pair < kKeyTiles / 2; ++pair) {
        uint32_t b[4];
        flash::ldmatrix_x4(b, tile_k + flash::k_ldmatrix_offset(lane, pair, ks, kStride));
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
          flash::mma_m16n8k16<T>(s[m][2 * pair], a[m], b[0], b[1]);
          flash::mma_m16n8k16<T>(s[m][2 * pair + 1], a[m], b[2], b[3]);
        }
      }
    }

    const bool masked = p.key_padding != nullptr ||
                        flash::tile_needs_mask(k0, kBlockN, p.kv_len, positions, p.causal, p.window);
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[m][j][e] *= p.scale_log2;
      }
      if (masked) {
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int col = j * 8 + flash::mma_c_element(lane, e).col;
            const bool hidden =
                flash::key_hidden(row_position[m][e / 2], k0 + col, p.causal, p.window);
            s[m][j][e] = hidden ? neg_inf : s[m][j][e] + bias[col];
          }
        }
      }

      // Online softmax; a row's maximum is reduced over the quad that shares it.
      float tile_max[2] = {neg_inf, neg_inf};
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) tile_max[e / 2] = fmaxf(tile_max[e / 2], s[m][j][e]);
      }
      float shift[2];
      float correction[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int step = 0; step < flash::kRowReduceSteps; ++step) {
          tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h],
                                                           flash::row_reduce_offset(step)));
        }
        const float new_max = fmaxf(row_max[m][h], tile_max[h]);
        // With no visible key so far the row stays at -inf; shifting by 0 keeps exp2(-inf) = 0
        // instead of exp2(-inf - -inf) = NaN.
        shift[h] = new_max == neg_inf ? 0.0f : new_max;
        correction[h] = flash::exp2_approx(row_max[m][h] - shift[h]);
        row_max[m][h] = new_max;
        row_sum[m][h] *= correction[h];
      }
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[m][j][e] = flash::exp2_approx(s[m][j][e] - shift[e / 2]);
          row_sum[m][e / 2] += s[m][j][e];
        }
      }
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) o[m][j][e] *= correction[e / 2];
      }
    }

    // O += P V, P straight from the S accumulators (the C -> A invariant of p_register_source);
    // each V fragment serves all kMTiles m16 tiles.
#pragma unroll
    for (int ks = 0; ks < kKeySteps; ++ks) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const flash::AccumulatorPair src = flash::p_register_source(r);
          const float* c = s[m][2 * ks + src.key_tile];
          a[m][r] = flash::pack_pair<T>(c[src.first_element], c[src.first_element + 1]);
        }
      }
#pragma unroll
      for (int pair = 0; pair < kDimTiles / 2; ++pair) {
        uint32_t b[4];
        flash::ldmatrix_x4_trans(b, tile_v + flash::v_ldmatrix_offset(lane, ks, pair, kStride));
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
          flash::mma_m16n8k16<T>(o[m][2 * pair], a[m], b[0], b[1]);
          flash::mma_m16n8k16<T>(o[m][2 * pair + 1], a[m], b[2], b[3]);
        }
      }
    }
  }

  // O / l through the warp's own rows of the Q tile (only this warp ever read them), then out
  // in 16-byte chunks; lse from the quad's lane 0.
  T* stage = s_q + warp_row * kStride;
  __syncwarp();
#pragma unroll
  for (int m = 0; m < kMTiles; ++m) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int step = 0; step < flash::kRowReduceSteps; ++step) {
        row_sum[m][h] += __shfl_xor_sync(0xffffffffu, row_sum[m][h], flash::row_reduce_offset(step));
      }
      const float inverse = row_sum[m][h] > 0.0f ? 1.0f / row_sum[m][h] : 0.0f;
      const flash::Coord c = flash::mma_c_element(lane, 2 * h);
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
        *reinterpret_cast<uint32_t*>(stage + (16 * m + c.row) * kStride + j * 8 + c.col) =
            flash::pack_pair<T>(o[m][j][2 * h] * inverse, o[m][j][2 * h + 1] * inverse);
      }
      if (p.lse != nullptr && flash::thread_in_group(lane) == 0 && rows[m][h] < p.rows_total) {
        constexpr float kLn2 = 0.6931471805599453f;
        const flash::QueryRow query = flash::packed_row(rows[m][h], p.q_len);
        const int64_t head = static_cast<int64_t>(kv_head) * p.group + query.head_in_group;
        p.lse[(batch * static_cast<int64_t>(p.q_heads) + head) * p.q_len + query.index] =
            row_sum[m][h] > 0.0f ? (row_max[m][h] + log2f(row_sum[m][h])) * kLn2 : neg_inf;
      }
    }
  }
  __syncwarp();
  T* out = static_cast<T*>(p.out) + batch * p.out_stride[0];
  for (int c = lane; c < Traits::kRowsPerWarp * kChunks; c += 32) {
    const int row = c / kChunks;
    const int chunk = c % kChunks;
    const int global_row = first_row + warp_row + row;
    if (global_row < p.rows_total) {
      const flash::QueryRow query = flash::packed_row(global_row, p.q_len);
      const int64_t head = static_cast<int64_t>(kv_head) * p.group + query.head_in_group;
      T* dst = out + head * p.out_stride[1] + static_cast<int64_t>(query.index) * p.out_stride[2] +
               chunk * 8;
      *reinterpret_cast<uint4*>(dst) =
          *reinterpret_cast<const uint4*>(stage + row * kStride + chunk * 8);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side.

bool is_flash_head_dim(int64_t d) { return d == 64 || d == 80 || d == 96 || d == 128 || d == 256; }

int shared_bytes_for(int64_t head_dim) {
  switch (head_dim) {
    case 64: return FlashTraits<64>::kSmemBytes;
    case 80: return FlashTraits<80>::kSmemBytes;
    case 96: return FlashTraits<96>::kSmemBytes;
    case 128: return FlashTraits<128>::kSmemBytes;
    default: return FlashTraits<256>::kSmemBytes;
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

bool strides_multiple_of_8(const int64_t (&stride)[3]) {
  return stride[0] % 8 == 0 && stride[1] % 8 == 0 && stride[2] % 8 == 0;
}

// Why flash_attention cannot take `p`, or "" when it can.
std::string unsupported_reason(const AttentionParams& p) {
  if (p.dtype != DType::F16 && p.dtype != DType::BF16) {
    return "dtype must be F16 or BF16, got " + std::string(dtype_name(p.dtype));
  }
  if (!is_flash_head_dim(p.head_dim)) {
    return "head_dim must be 64, 80, 96, 128 or 256, got " + std::to_string(p.head_dim);
  }
  if (p.v_dim != p.head_dim) {
    return "v's head dim must equal q's, got " + std::to_string(p.v_dim) + " and " +
           std::to_string(p.head_dim);
  }
  if (p.mask != nullptr) return "attn_mask is given (full masks run in attention_simple)";
  if (p.key_padding != nullptr) {
    const DType dt = p.key_padding_dtype;
    if (dt != DType::BOOL && dt != DType::U8 && dt != DType::I8 && dt != DType::I32 &&
        dt != DType::I64) {
      return "key_padding_mask must be BOOL, U8, I8, I32 or I64, got " +
             std::string(dtype_name(dt));
    }
  }
  if (p.out == nullptr && p.batch * p.q_heads * p.q_len > 0) return "out is null";
  if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.out)) {
    return "q, k, v and out must start on a 16-byte boundary (rows are read as 16-byte vectors)";
  }
  if (!strides_multiple_of_8(p.q_stride) || !strides_multiple_of_8(p.k_stride) ||
      !strides_multiple_of_8(p.v_stride) || !strides_multiple_of_8(p.out_stride)) {
    return "the batch, head and sequence strides of q, k, v and out must be multiples of 8 "
           "elements (rows are read as 16-byte vectors)";
  }
  if (p.kv_heads < 1 || p.q_heads % p.kv_heads != 0) {
    return "kv heads (" + std::to_string(p.kv_heads) + ") must divide q heads (" +
           std::to_string(p.q_heads) + ")";
  }
  if (p.q_len > kMaxLength || p.kv_len > kMaxLength ||
      (p.q_heads / p.kv_heads) * p.q_len > kMaxLength) {
    return "q_len, kv_len and (q heads / kv heads) * q_len must be at most 2^30";
  }
  if (p.batch > kMaxGridYZ || p.kv_heads > kMaxGridYZ) {
    return "batch and kv heads must be at most 65535 (grid limits)";
  }
  if (p.sliding_window < 0) return "sliding_window must be >= 0 (0: none)";

  int device = 0;
  int major = 0;
  int shared_optin = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess) {
    cudaGetLastError();  // the failed query's error is not sticky; clear it for later calls
    return "the current CUDA device cannot be queried";
  }
  if (major < 8) {
    return "needs compute capability 8.0 or newer (bf16 tensor cores, cp.async), device " +
           std::to_string(device) + " has " + std::to_string(major) + ".x";
  }
  if (shared_optin < shared_bytes_for(p.head_dim)) {
    return "head_dim " + std::to_string(p.head_dim) + " needs " +
           std::to_string(shared_bytes_for(p.head_dim)) + " bytes of shared memory per block, "
           "device " + std::to_string(device) + " allows " + std::to_string(shared_optin);
  }
  return "";
}

template <typename T, int D>
void launch(const FlashParams& fp, int64_t batch, int64_t kv_heads, cudaStream_t stream) {
  using Traits = FlashTraits<D>;
  const auto kernel = &flash_forward_kernel<T, D>;
  HFPORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         Traits::kSmemBytes));
  const unsigned blocks = static_cast<unsigned>((fp.rows_total + Traits::kBlockM - 1) / Traits::kBlockM);
  const dim3 grid(blocks, static_cast<unsigned>(kv_heads), static_cast<unsigned>(batch));
  kernel<<<grid, Traits::kThreads, Traits::kSmemBytes, stream>>>(fp);
  HFPORT_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch_for_head_dim(const FlashParams& fp, int64_t head_dim, int64_t batch, int64_t kv_heads,
                         cudaStream_t stream) {
  switch (head_dim) {
    case 64: launch<T, 64>(fp, batch, kv_heads, stream); break;
    case 80: launch<T, 80>(fp, batch, kv_heads, stream); break;
    case 96: launch<T, 96>(fp, batch, kv_heads, stream); break;
    case 128: launch<T, 128>(fp, batch, kv_heads, stream); break;
    default: launch<T, 256>(fp, batch, kv_heads, stream); break;
  }
}

}  // namespace

bool flash_attention_supports(const AttentionParams& params) {
  return unsupported_reason(params).empty();
}

void flash_attention(const AttentionParams& params, void* stream) {
  const std::string reason = unsupported_reason(params);
  if (!reason.empty()) throw ArgumentError("flash_attention (CUDA): " + reason);
  if (params.batch == 0 || params.q_heads == 0 || params.q_len == 0) return;

  FlashParams fp{};
  fp.q = params.q;
  fp.k = params.k;
  fp.v = params.v;
  fp.out = params.out;
  fp.lse = params.lse;
  for (int i = 0; i < 3; ++i) {
    fp.q_stride[i] = params.q_stride[i];
    fp.k_stride[i] = params.k_stride[i];
    fp.v_stride[i] = params.v_stride[i];
    fp.out_stride[i] = params.out_stride[i];
  }
  fp.key_padding = params.key_padding;
  fp.key_padding_dtype = params.key_padding_dtype;
  fp.key_padding_stride[0] = params.key_padding_stride[0];
  fp.key_padding_stride[1] = params.key_padding_stride[1];
  fp.q_len = static_cast<int>(params.q_len);
  fp.kv_len = static_cast<int>(params.kv_len);
  fp.q_heads = static_cast<int>(params.q_heads);
  fp.group = static_cast<int>(params.q_heads / params.kv_heads);
  fp.rows_total = fp.group * fp.q_len;
  fp.offset = fp.kv_len - fp.q_len;
  fp.window = flash::effective_window(params.sliding_window, fp.kv_len);
  fp.causal = params.causal;
  fp.scale_log2 = static_cast<float>(static_cast<double>(params.scale) * 1.4426950408889634);

  const auto cuda_stream = static_cast<cudaStream_t>(stream);
  if (params.dtype == DType::F16) {
    launch_for_head_dim<__half>(fp, params.head_dim, params.batch, params.kv_heads, cuda_stream);
  } else {
    launch_for_head_dim<__nv_bfloat16>(fp, params.head_dim, params.batch, params.kv_heads,
                                       cuda_stream);
  }
}

}  // namespace hfport::cuda
