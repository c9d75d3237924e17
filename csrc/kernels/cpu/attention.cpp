// The flash-style CPU attention kernel; see attention.h.
//
// Kernel layout. Scores live in the log2 domain: q is multiplied by scale * log2(e) when it is
// packed, so exp(scale * q.k - max) becomes exp2(s - max) and the softmax needs no further
// multiply; an additive mask is multiplied by log2(e) as it is added. Per work item (batch, head,
// block of kQueryBlock queries) the state is the f32 output accumulator [rows, Dv] and, per row,
// the running maximum m and sum l. Each key block of kKeyBlock keys does:
//   s = q_block k_block^T              (micro-kernel over the packed k^T block)
//   masks -> -inf                      (only on blocks that the masks cut through)
//   m' = max(m, rowmax s); p = exp2(s - m'); l = l * exp2(m - m') + rowsum p
//   o = o * exp2(m - m') + p v_block   (micro-kernel; the rescale is folded into its load)
// and the item ends with o / l. A row whose maximum is still -inf has seen no visible key: its
// p are zero, and it ends as zeros with a logsumexp of -inf.
//
// k is packed once per call into f32 blocks [D][kKeyBlock] (k^T, zero-padded past Sk), so the
// q k^T micro-kernel reads unit-stride rows of 16 keys per d; f16/bf16 v is widened once to f32
// rows, f32 v is read in place. A call with few query rows per kv head (a decode step) packs
// nothing: its qk_in_place kernel reads the rows of k in place (f16/bf16 k and v widened one key
// block at a time), since packing would move the whole cache to use it once.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/cast.h"
#include "core/parallel.h"

namespace hfport {

namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 128;  // a multiple of the micro-kernel's 16 columns
constexpr int64_t kTileRows = 6;   // rows of one micro-kernel tile: 12 accumulators of 8 floats
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Multiply-adds a thread should get at least, so thread start-up stays a small part of a call.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 18;

// ---------------------------------------------------------------------------------------------
// Element access shared by the kernel's mask code.

float load_float(const void* base, DType dtype, int64_t index) {
  uint16_t half;
  switch (dtype) {
    case DType::F32: {
      float value;
      std::memcpy(&value, static_cast<const float*>(base) + index, sizeof(float));
      return value;
    }
    case DType::F16:
      std::memcpy(&half, static_cast<const uint16_t*>(base) + index, sizeof(half));
      return f16_to_f32(half);
    default:  // BF16
      std::memcpy(&half, static_cast<const uint16_t*>(base) + index, sizeof(half));
      return bf16_to_f32(half);
  }
}

bool load_keep(const void* base, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::BOOL:
    case DType::U8:
    case DType::I8:
      return static_cast<const uint8_t*>(base)[index] != 0;
    case DType::I32: {
      int32_t value;
      std::memcpy(&value, static_cast<const int32_t*>(base) + index, sizeof(value));
      return value != 0;
    }
    default: {  // I64
      int64_t value;
      std::memcpy(&value, static_cast<const int64_t*>(base) + index, sizeof(value));
      return value != 0;
    }
  }
}

const std::byte* element(const void* base, DType dtype, int64_t index) {
  return static_cast<const std::byte*>(base) + index * static_cast<int64_t>(dtype_size(dtype));
}

// ---------------------------------------------------------------------------------------------
// Block kernels: plain loops, and AVX2/FMA versions picked at run time.
//
//   qk:      s[i][j] = sum_d q[i][d] * kT[d][j]         (cols is a multiple of 16)
//   softmax: the online-softmax step on rows of s: m, l updated, s replaced by p, corr[i] set
//   pv:      o[i][c] = o[i][c] * corr[i] + sum_j p[i][j] * v[j][c]
//   qk_in_place: s[i][j] = sum_d q[i][d] * k[j][d], k read as rows in place (the few-query path)

struct BlockKernels {
  void (*qk)(const float* q, int64_t ld_q, int64_t rows, int64_t depth, const float* kT,
             int64_t ld_k, int64_t cols, float* s, int64_t ld_s);
  void (*qk_in_place)(const float* q, int64_t ld_q, int64_t rows, int64_t depth, const float* k,
                      int64_t ld_k, int64_t keys, float* s, int64_t ld_s);
  void (*softmax)(float* s, int64_t ld_s, int64_t rows, int64_t cols, float* m, float* l,
                  float* corr);
  void (*pv)(const float* p, int64_t ld_p, int64_t rows, int64_t keys, const float* v,
             int64_t ld_v, int64_t cols, const float* corr, float* o, int64_t ld_o);
};

void qk_plain(const float* q, int64_t ld_q, int64_t rows, int64_t depth, const float* kT,
              int64_t ld_k, int64_t cols, float* s, int64_t ld_s) {
  for (int64_t i = 0; i < rows; ++i) {
    float* srow = s + i * ld_s;
    for (int64_t j = 0; j < cols; ++j) srow[j] = 0.0f;
    for (int64_t d = 0; d < depth; ++d) {
      const float qd = q[i * ld_q + d];
      const float* krow = kT + d * ld_k;
      for (int64_t j = 0; j < cols; ++j) srow[j] += qd * krow[j];
    }
  }
}

void qk_in_place_plain(const float* q, int64_t ld_q, int64_t rows, int64_t depth, const float* k,
                       int64_t ld_k, int64_t keys, float* s, int64_t ld_s) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < keys; ++j) {
      float sum = 0.0f;
      for (int64_t d = 0; d < depth; ++d) sum += q[i * ld_q + d] * k[j * ld_k + d];
      s[i * ld_s + j] = sum;
    }
  }
}

// One row's online-softmax step given its block maximum (the plain kernel's).
inline float softmax_correction(float& m, float& l, float block_max) {
  const float m_new = std::max(m, block_max);
  const float corr = m == kNegInf ? 0.0f : std::exp2(m - m_new);
  m = m_new;
  l *= corr;
  return corr;
}

void softmax_plain(float* s, int64_t ld_s, int64_t rows, int64_t cols, float* m, float* l,
                   float* corr) {
  for (int64_t i = 0; i < rows; ++i) {
    float* srow = s + i * ld_s;
    float block_max = kNegInf;
    for (int64_t j = 0; j < cols; ++j) block_max = std::max(block_max, srow[j]);
    corr[i] = softmax_correction(m[i], l[i], block_max);
    const float shift = m[i] == kNegInf ? 0.0f : m[i];
    float sum = 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      srow[j] = std::exp2(srow[j] - shift);
      sum += srow[j];
    }
    l[i] += sum;
  }
}

void pv_plain(const float* p, int64_t ld_p, int64_t rows, int64_t keys, const float* v,
              int64_t ld_v, int64_t cols, const float* corr, float* o, int64_t ld_o) {
  for (int64_t i = 0; i < rows; ++i) {
    float* orow = o + i * ld_o;
    for (int64_t c = 0; c < cols; ++c) orow[c] *= corr[i];
    for (int64_t j = 0; j < keys; ++j) {
      const float pj = p[i * ld_p + j];
      const float* vrow = v + j * ld_v;
      for (int64_t c = 0; c < cols; ++c) orow[c] += pj * vrow[c];
    }
  }
}

#if defined(__x86_64__)
// Every loop over a tile's rows (r < R) or vectors (x < V) carries `#pragma GCC unroll`: without
// it GCC 12 keeps the acc[R][V] accumulators in a stack array and stores all of them on every
// iteration (one 64-byte store per FMA), which halved the micro-kernels' speed.
#define HFPORT_AVX2 __attribute__((target("avx2,fma")))

// 2^x for x <= 128, exact 0 below -126 (masked scores are -inf) and for NaN: x = n + r with
// |r| <= 1/2, 2^r by its degree-7 Taylor polynomial (error below 1e-8 relative), 2^n through the
// exponent bits.
HFPORT_AVX2 inline __m256 exp2_avx2(__m256 x) {
  // x < -126, or NaN (the -inf - -inf of a row that has seen no key yet): 0.
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_NGE_UQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_sub_ps(x, n);
  __m256 poly = _mm256_set1_ps(1.525273380405984e-05f);
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.5403530393381606e-04f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.3333558146428443e-03f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(9.618129107628477e-03f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(5.550410866482158e-02f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(2.402265069591007e-01f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(6.931471805599453e-01f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f));
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(poly, _mm256_castsi256_ps(exponent));
  return _mm256_andnot_ps(underflow, result);
}

HFPORT_AVX2 inline float hmax_avx2(__m256 x) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

HFPORT_AVX2 inline float hsum_avx2(__m256 x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// The sums of eight vectors, lane t holding the sum of acc[t]'s lanes.
HFPORT_AVX2 inline __m256 sum8_avx2(const __m256* acc) {
  const __m256 h0 = _mm256_hadd_ps(acc[0], acc[1]);
  const __m256 h1 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 h2 = _mm256_hadd_ps(acc[4], acc[5]);
  const __m256 h3 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 g0 = _mm256_hadd_ps(h0, h1);  // low half: 0-3 of acc 0-3; high half: 4-7
  const __m256 g1 = _mm256_hadd_ps(h2, h3);  // the same for acc 4-7
  return _mm256_add_ps(_mm256_permute2f128_ps(g0, g1, 0x20), _mm256_permute2f128_ps(g0, g1, 0x31));
}

// Eight keys at a time: per 8 floats of d, one load of q feeds 8 FMAs against 8 key rows, and the
// 8 accumulators reduce to 8 scores at once. The depth % 8 tail goes through lane masks.
HFPORT_AVX2 void qk_in_place_avx2(const float* q, int64_t ld_q, int64_t rows, int64_t depth,
                                  const float* k, int64_t ld_k, int64_t keys, float* s,
                                  int64_t ld_s) {
  const int64_t full = depth / 8 * 8;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(depth - full)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t i = 0; i < rows; ++i) {
    const float* qi = q + i * ld_q;
    float* si = s + i * ld_s;
    int64_t j = 0;
    for (; j + 8 <= keys; j += 8) {
      const float* kj = k + j * ld_k;
      __m256 acc[8];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) acc[t] = _mm256_setzero_ps();
      for (int64_t d = 0; d < full; d += 8) {
        const __m256 qd = _mm256_loadu_ps(qi + d);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) {
          acc[t] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kj + t * ld_k + d), acc[t]);
        }
      }
      if (full < depth) {
        const __m256 qd = _mm256_maskload_ps(qi + full, tail);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) {
          acc[t] = _mm256_fmadd_ps(qd, _mm256_maskload_ps(kj + t * ld_k + full, tail), acc[t]);
        }
      }
      _mm256_storeu_ps(si + j, sum8_avx2(acc));
    }
    for (; j < keys; ++j) {
      const float* kj = k + j * ld_k;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t d = 0; d < full; d += 8) {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(qi + d), _mm256_loadu_ps(kj + d), acc);
      }
      if (full < depth) {
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(qi + full, tail),
                              _mm256_maskload_ps(kj + full, tail), acc);
      }
      si[j] = hsum_avx2(acc);
    }
  }
}

// A tile of R rows x 16 columns of s: per d, two loads of k^T and R broadcasts of q feed 2R FMAs.
template <int R>
HFPORT_AVX2 inline void qk_tile_avx2(const float* q, int64_t ld_q, int64_t depth, const float* kT,
                                     int64_t ld_k, float* s, int64_t ld_s) {
  __m256 acc[R][2];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t d = 0; d < depth; ++d) {
    const __m256 k0 = _mm256_loadu_ps(kT + d * ld_k);
    const __m256 k1 = _mm256_loadu_ps(kT + d * ld_k + 8);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 qb = _mm256_broadcast_ss(q + r * ld_q + d);
      acc[r][0] = _mm256_fmadd_ps(qb, k0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(qb, k1, acc[r][1]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(s + r * ld_s, acc[r][0]);
    _mm256_storeu_ps(s + r * ld_s + 8, acc[r][1]);
  }
}

HFPORT_AVX2 void qk_avx2(const float* q, int64_t ld_q, int64_t rows, int64_t depth,
                         const float* kT, int64_t ld_k, int64_t cols, float* s, int64_t ld_s) {
  for (int64_t i = 0; i < rows; i += kTileRows) {
    const float* qi = q + i * ld_q;
    float* si = s + i * ld_s;
    for (int64_t j = 0; j < cols; j += 16) {
      switch (std::min<int64_t>(kTileRows, rows - i)) {
        case 6: qk_tile_avx2<6>(qi, ld_q, depth, kT + j, ld_k, si + j, ld_s); break;
        case 5: qk_tile_avx2<5>(qi, ld_q, depth, kT + j, ld_k, si + j, ld_s); break;
        case 4: qk_tile_avx2<4>(qi, ld_q, depth, kT + j, ld_k, si + j, ld_s); break;
        case 3: qk_tile_avx2<3>(qi, ld_q, depth, kT + j, ld_k, si + j, ld_s); break;
        case 2: qk_tile_avx2<2>(qi, ld_q, depth, kT + j, ld_k, si + j, ld_s); break;
        default: qk_tile_avx2<1>(qi, ld_q, depth, kT + j, ld_k, si + j, ld_s); break;
      }
    }
  }
}

// The three passes of softmax_avx512 (below) on 8-float vectors.
HFPORT_AVX2 void softmax_avx2(float* s, int64_t ld_s, int64_t rows, int64_t cols, float* m,
                              float* l, float* corr) {
  const int64_t full = cols / 8 * 8;
  const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t i = 0; i < rows; ++i) {
    const float* srow = s + i * ld_s;
    __m256 vmax = _mm256_set1_ps(kNegInf);
    for (int64_t j = 0; j < full; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(srow + j));
    float block_max = hmax_avx2(vmax);
    for (int64_t j = full; j < cols; ++j) block_max = std::max(block_max, srow[j]);
    corr[i] = block_max;
  }
  for (int64_t i = 0; i < rows; i += 8) {
    const __m256i lanes =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(8, rows - i))),
                           lane_index);
    const __m256 m_old = _mm256_maskload_ps(m + i, lanes);
    const __m256 m_new = _mm256_max_ps(m_old, _mm256_maskload_ps(corr + i, lanes));
    const __m256 c = exp2_avx2(_mm256_sub_ps(m_old, m_new));
    _mm256_maskstore_ps(l + i, lanes, _mm256_mul_ps(_mm256_maskload_ps(l + i, lanes), c));
    _mm256_maskstore_ps(m + i, lanes, m_new);
    _mm256_maskstore_ps(corr + i, lanes, c);
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* srow = s + i * ld_s;
    const float shift = m[i] == kNegInf ? 0.0f : m[i];
    const __m256 vshift = _mm256_set1_ps(shift);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = 0; j < full; j += 8) {
      const __m256 p = exp2_avx2(_mm256_sub_ps(_mm256_loadu_ps(srow + j), vshift));
      _mm256_storeu_ps(srow + j, p);
      vsum = _mm256_add_ps(vsum, p);
    }
    float sum = hsum_avx2(vsum);
    for (int64_t j = full; j < cols; ++j) {
      srow[j] = std::exp2(srow[j] - shift);
      sum += srow[j];
    }
    l[i] += sum;
  }
}

// A tile of R rows x (8 * V) output columns: per key, V loads of v and R broadcasts of p feed
// R * V FMAs. `Masked` tiles cover the last Dv % 8 columns through lane masks.
template <int R, int V, bool Masked>
HFPORT_AVX2 inline void pv_tile_avx2(const float* p, int64_t ld_p, int64_t keys, const float* v,
                                     int64_t ld_v, const float* corr, float* o, int64_t ld_o,
                                     __m256i lanes) {
  __m256 acc[R][V];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m256 c = _mm256_set1_ps(corr[r]);
    #pragma GCC unroll 16
    for (int x = 0; x < V; ++x) {
      const __m256 old = Masked ? _mm256_maskload_ps(o + r * ld_o + 8 * x, lanes)
                                : _mm256_loadu_ps(o + r * ld_o + 8 * x);
      acc[r][x] = _mm256_mul_ps(old, c);
    }
  }
  for (int64_t j = 0; j < keys; ++j) {
    __m256 vj[V];
    #pragma GCC unroll 16
    for (int x = 0; x < V; ++x) {
      vj[x] = Masked ? _mm256_maskload_ps(v + j * ld_v + 8 * x, lanes)
                     : _mm256_loadu_ps(v + j * ld_v + 8 * x);
    }
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 pb = _mm256_broadcast_ss(p + r * ld_p + j);
      #pragma GCC unroll 16
      for (int x = 0; x < V; ++x) acc[r][x] = _mm256_fmadd_ps(pb, vj[x], acc[r][x]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int x = 0; x < V; ++x) {
      if (Masked) {
        _mm256_maskstore_ps(o + r * ld_o + 8 * x, lanes, acc[r][x]);
      } else {
        _mm256_storeu_ps(o + r * ld_o + 8 * x, acc[r][x]);
      }
    }
  }
}

template <int R>
HFPORT_AVX2 void pv_rows_avx2(const float* p, int64_t ld_p, int64_t keys, const float* v,
                              int64_t ld_v, int64_t cols, const float* corr, float* o,
                              int64_t ld_o) {
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    pv_tile_avx2<R, 2, false>(p, ld_p, keys, v + c, ld_v, corr, o + c, ld_o, all);
  }
  for (; c + 8 <= cols; c += 8) {
    pv_tile_avx2<R, 1, false>(p, ld_p, keys, v + c, ld_v, corr, o + c, ld_o, all);
  }
  if (c < cols) {
    const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lanes =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols - c)), lane_index);
    pv_tile_avx2<R, 1, true>(p, ld_p, keys, v + c, ld_v, corr, o + c, ld_o, lanes);
  }
}

HFPORT_AVX2 void pv_avx2(const float* p, int64_t ld_p, int64_t rows, int64_t keys,
                         const float* v, int64_t ld_v, int64_t cols, const float* corr, float* o,
                         int64_t ld_o) {
  for (int64_t i = 0; i < rows; i += kTileRows) {
    const float* pi = p + i * ld_p;
    float* oi = o + i * ld_o;
    switch (std::min<int64_t>(kTileRows, rows - i)) {
      case 6: pv_rows_avx2<6>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 5: pv_rows_avx2<5>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 4: pv_rows_avx2<4>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 3: pv_rows_avx2<3>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 2: pv_rows_avx2<2>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      default: pv_rows_avx2<1>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
    }
  }
}

#undef HFPORT_AVX2

// The same three kernels on 16-float AVX-512 vectors (tiles of 8 rows x 32 columns: 16
// accumulators of the 32 registers), for CPUs that have it (Zen 4/5, Intel server parts).
#define HFPORT_AVX512 __attribute__((target("avx512f,avx2,fma")))
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized inside max/min/roundscale (their
// pass-through operand is _mm512_undefined_ps); the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

HFPORT_AVX512 inline __m512 exp2_avx512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_GE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-126.0f)), _mm512_set1_ps(127.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_sub_ps(x, n);
  __m512 poly = _mm512_set1_ps(1.525273380405984e-05f);
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.5403530393381606e-04f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.3333558146428443e-03f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(9.618129107628477e-03f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(5.550410866482158e-02f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(2.402265069591007e-01f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(6.931471805599453e-01f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(poly, n));
}

constexpr int64_t kTileRows512 = 8;

template <int R>
HFPORT_AVX512 inline void qk_tile_avx512(const float* q, int64_t ld_q, int64_t depth,
                                         const float* kT, int64_t ld_k, float* s, int64_t ld_s) {
  __m512 acc[R][2];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t d = 0; d < depth; ++d) {
    const __m512 k0 = _mm512_loadu_ps(kT + d * ld_k);
    const __m512 k1 = _mm512_loadu_ps(kT + d * ld_k + 16);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * ld_q + d]);
      acc[r][0] = _mm512_fmadd_ps(qb, k0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(qb, k1, acc[r][1]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(s + r * ld_s, acc[r][0]);
    _mm512_storeu_ps(s + r * ld_s + 16, acc[r][1]);
  }
}

template <int R>
HFPORT_AVX512 void qk_rows_avx512(const float* q, int64_t ld_q, int64_t depth, const float* kT,
                                  int64_t ld_k, int64_t cols, float* s, int64_t ld_s) {
  int64_t j = 0;
  for (; j + 32 <= cols; j += 32) qk_tile_avx512<R>(q, ld_q, depth, kT + j, ld_k, s + j, ld_s);
  if (j < cols) {  // 16 columns left: the AVX2 tile would do, but this stays in one ISA
    __m512 acc[R];
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t d = 0; d < depth; ++d) {
      const __m512 k0 = _mm512_loadu_ps(kT + d * ld_k + j);
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * ld_q + d]), k0, acc[r]);
    }
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(s + r * ld_s + j, acc[r]);
  }
}

HFPORT_AVX512 void qk_avx512(const float* q, int64_t ld_q, int64_t rows, int64_t depth,
                             const float* kT, int64_t ld_k, int64_t cols, float* s, int64_t ld_s) {
  for (int64_t i = 0; i < rows; i += kTileRows512) {
    const float* qi = q + i * ld_q;
    float* si = s + i * ld_s;
    switch (std::min<int64_t>(kTileRows512, rows - i)) {
      case 8: qk_rows_avx512<8>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      case 7: qk_rows_avx512<7>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      case 6: qk_rows_avx512<6>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      case 5: qk_rows_avx512<5>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      case 4: qk_rows_avx512<4>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      case 3: qk_rows_avx512<3>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      case 2: qk_rows_avx512<2>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
      default: qk_rows_avx512<1>(qi, ld_q, depth, kT, ld_k, cols, si, ld_s); break;
    }
  }
}

// Horizontal max and sum: the two 8-float halves folded, then the AVX2 trees (a log-depth
// reduction; a loop over the 16 lanes was a 16-deep chain of dependent scalar operations, and
// GCC 12's _mm512_reduce_* warn of uninitialised lanes).
HFPORT_AVX512 inline __m256 high_half(__m512 x) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
}

HFPORT_AVX512 inline float hmax_avx512(__m512 x) {
  return hmax_avx2(_mm256_max_ps(_mm512_castps512_ps256(x), high_half(x)));
}

HFPORT_AVX512 inline float hsum_avx512(__m512 x) {
  return hsum_avx2(_mm256_add_ps(_mm512_castps512_ps256(x), high_half(x)));
}

// qk_in_place_avx2 on 16-float vectors; the eight accumulators are folded to 8 floats and reduced
// by the AVX2 tree.
HFPORT_AVX512 void qk_in_place_avx512(const float* q, int64_t ld_q, int64_t rows,
                                      int64_t depth, const float* k, int64_t ld_k, int64_t keys,
                                      float* s, int64_t ld_s) {
  const int64_t full = depth / 16 * 16;
  const auto tail = static_cast<__mmask16>((1u << (depth - full)) - 1);
  for (int64_t i = 0; i < rows; ++i) {
    const float* qi = q + i * ld_q;
    float* si = s + i * ld_s;
    int64_t j = 0;
    for (; j + 8 <= keys; j += 8) {
      const float* kj = k + j * ld_k;
      __m512 acc[8];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) acc[t] = _mm512_setzero_ps();
      for (int64_t d = 0; d < full; d += 16) {
        const __m512 qd = _mm512_loadu_ps(qi + d);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) {
          acc[t] = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kj + t * ld_k + d), acc[t]);
        }
      }
      if (tail) {
        const __m512 qd = _mm512_maskz_loadu_ps(tail, qi + full);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) {
          acc[t] = _mm512_fmadd_ps(qd, _mm512_maskz_loadu_ps(tail, kj + t * ld_k + full), acc[t]);
        }
      }
      __m256 folded[8];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) {
        folded[t] = _mm256_add_ps(_mm512_castps512_ps256(acc[t]), high_half(acc[t]));
      }
      _mm256_storeu_ps(si + j, sum8_avx2(folded));
    }
    for (; j < keys; ++j) {
      const float* kj = k + j * ld_k;
      __m512 acc = _mm512_setzero_ps();
      for (int64_t d = 0; d < full; d += 16) {
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(qi + d), _mm512_loadu_ps(kj + d), acc);
      }
      if (tail) {
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, qi + full),
                              _mm512_maskz_loadu_ps(tail, kj + full), acc);
      }
      si[j] = hsum_avx512(acc);
    }
  }
}

// The online-softmax step in three passes: every row's block maximum; then the running maxima,
// the corrections exp2(m - m') and the rescaled sums, 16 rows per vector (a row whose running
// maximum is -inf gets a correction of 0: exp2_avx512 maps the -inf or NaN difference to 0);
// then p = exp2(s - m') row by row, its sum added to l.
HFPORT_AVX512 void softmax_avx512(float* s, int64_t ld_s, int64_t rows, int64_t cols, float* m,
                                  float* l, float* corr) {
  const int64_t full = cols / 16 * 16;
  const auto tail = static_cast<__mmask16>((1u << (cols - full)) - 1);
  const __m512 neg_inf = _mm512_set1_ps(kNegInf);
  for (int64_t i = 0; i < rows; ++i) {
    const float* srow = s + i * ld_s;
    __m512 vmax = _mm512_mask_loadu_ps(neg_inf, tail, srow + full);
    for (int64_t j = 0; j < full; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(srow + j));
    corr[i] = hmax_avx512(vmax);
  }
  for (int64_t i = 0; i < rows; i += 16) {
    const auto lanes = static_cast<__mmask16>(rows - i >= 16 ? 0xFFFFu : (1u << (rows - i)) - 1);
    const __m512 m_old = _mm512_mask_loadu_ps(neg_inf, lanes, m + i);
    const __m512 m_new = _mm512_max_ps(m_old, _mm512_mask_loadu_ps(neg_inf, lanes, corr + i));
    const __m512 c = exp2_avx512(_mm512_sub_ps(m_old, m_new));
    _mm512_mask_storeu_ps(l + i, lanes, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, l + i), c));
    _mm512_mask_storeu_ps(m + i, lanes, m_new);
    _mm512_mask_storeu_ps(corr + i, lanes, c);
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* srow = s + i * ld_s;
    const __m512 vshift = _mm512_set1_ps(m[i] == kNegInf ? 0.0f : m[i]);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t j = 0; j < full; j += 16) {
      const __m512 p = exp2_avx512(_mm512_sub_ps(_mm512_loadu_ps(srow + j), vshift));
      _mm512_storeu_ps(srow + j, p);
      vsum = _mm512_add_ps(vsum, p);
    }
    if (tail) {
      const __m512 p = _mm512_maskz_mov_ps(
          tail, exp2_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, srow + full), vshift)));
      _mm512_mask_storeu_ps(srow + full, tail, p);
      vsum = _mm512_add_ps(vsum, p);
    }
    l[i] += hsum_avx512(vsum);
  }
}

template <int R, int V>
HFPORT_AVX512 inline void pv_tile_avx512(const float* p, int64_t ld_p, int64_t keys,
                                         const float* v, int64_t ld_v, const float* corr, float* o,
                                         int64_t ld_o, __mmask16 last) {
  // `last` masks the lanes of the last vector (all ones unless it is the Dv % 16 tail).
  auto lanes = [&](int x) { return x == V - 1 ? last : static_cast<__mmask16>(0xFFFF); };
  __m512 acc[R][V];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 c = _mm512_set1_ps(corr[r]);
    #pragma GCC unroll 16
    for (int x = 0; x < V; ++x) {
      acc[r][x] = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes(x), o + r * ld_o + 16 * x), c);
    }
  }
  for (int64_t j = 0; j < keys; ++j) {
    __m512 vj[V];
    #pragma GCC unroll 16
    for (int x = 0; x < V; ++x) vj[x] = _mm512_maskz_loadu_ps(lanes(x), v + j * ld_v + 16 * x);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * ld_p + j]);
      #pragma GCC unroll 16
      for (int x = 0; x < V; ++x) acc[r][x] = _mm512_fmadd_ps(pb, vj[x], acc[r][x]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int x = 0; x < V; ++x) _mm512_mask_storeu_ps(o + r * ld_o + 16 * x, lanes(x), acc[r][x]);
  }
}

template <int R>
HFPORT_AVX512 void pv_rows_avx512(const float* p, int64_t ld_p, int64_t keys, const float* v,
                                  int64_t ld_v, int64_t cols, const float* corr, float* o,
                                  int64_t ld_o) {
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    pv_tile_avx512<R, 2>(p, ld_p, keys, v + c, ld_v, corr, o + c, ld_o, 0xFFFF);
  }
  if (c < cols) {
    const int64_t left = cols - c;
    if (left > 16) {
      const auto last = static_cast<__mmask16>((1u << (left - 16)) - 1);
      pv_tile_avx512<R, 2>(p, ld_p, keys, v + c, ld_v, corr, o + c, ld_o, last);
    } else {
      const auto last = static_cast<__mmask16>(left == 16 ? 0xFFFFu : (1u << left) - 1);
      pv_tile_avx512<R, 1>(p, ld_p, keys, v + c, ld_v, corr, o + c, ld_o, last);
    }
  }
}

HFPORT_AVX512 void pv_avx512(const float* p, int64_t ld_p, int64_t rows, int64_t keys,
                             const float* v, int64_t ld_v, int64_t cols, const float* corr,
                             float* o, int64_t ld_o) {
  for (int64_t i = 0; i < rows; i += kTileRows512) {
    const float* pi = p + i * ld_p;
    float* oi = o + i * ld_o;
    switch (std::min<int64_t>(kTileRows512, rows - i)) {
      case 8: pv_rows_avx512<8>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 7: pv_rows_avx512<7>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 6: pv_rows_avx512<6>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 5: pv_rows_avx512<5>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 4: pv_rows_avx512<4>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 3: pv_rows_avx512<3>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      case 2: pv_rows_avx512<2>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
      default: pv_rows_avx512<1>(pi, ld_p, keys, v, ld_v, cols, corr + i, oi, ld_o); break;
    }
  }
}

#pragma GCC diagnostic pop
#undef HFPORT_AVX512
#endif

// The best kernels this CPU runs, or fewer when HFPORT_ATTENTION_KERNELS names a lesser set
// ("plain", "avx2"): read on every call, so tests can check every set in one process.
const BlockKernels& block_kernels() {
  static const BlockKernels plain{qk_plain, qk_in_place_plain, softmax_plain, pv_plain};
  const char* limit = std::getenv("HFPORT_ATTENTION_KERNELS");
  const std::string wanted = limit ? limit : "";
  if (wanted == "plain") return plain;
#if defined(__x86_64__)
  static const BlockKernels avx2{qk_avx2, qk_in_place_avx2, softmax_avx2, pv_avx2};
  static const BlockKernels avx512{qk_avx512, qk_in_place_avx512, softmax_avx512, pv_avx512};
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f");
  if (has_avx512 && wanted != "avx2") return avx512;
  if (has_avx2) return avx2;
#endif
  return plain;
}

// ---------------------------------------------------------------------------------------------
// The kernel.

// Widens `count` elements of q/k/v's dtype to f32.
void widen(const void* src, DType dtype, float* dst, int64_t count) {
  if (dtype == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(float));
  } else {
    cast_contiguous(src, dtype, dst, DType::F32, count);
  }
}

// Items per parallel chunk so that a chunk carries at least kMinWorkPerThread multiply-adds.
int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, kMinWorkPerThread / std::max<int64_t>(1, work_per_item));
}

// Calls with at most this many query rows per kv head (q_len x the GQA group) read k (and f32 v)
// in place, block by block, instead of packing k^T for the whole call: a decode step against a
// long cache would otherwise read the cache, write its transposed copy and read that again for
// one query row. Packing pays for itself when enough rows reuse each packed block, since the
// packed q k^T tile does 16 FMAs per 10 loads where qk_in_place does one load per FMA. Measured
// on the AVX-512 Xeon (docs/decisions.md): the two paths meet at about 64 rows per kv head.
constexpr int64_t kKeysInPlaceMaxRows = 64;

bool keys_in_place(const AttentionParams& p) {
  return p.q_len * (p.q_heads / p.kv_heads) <= kKeysInPlaceMaxRows;
}

// The packed k^T blocks and widened v of one call. They live in a buffer the calling thread
// keeps for its next call (up to kKeptPackFloats): fresh memory of that size would be mapped
// anew by malloc on every call, and its first-touch page faults cost as much as the packing.
constexpr size_t kKeptPackFloats = size_t{16} << 20;  // 64 MiB

struct PackedKv {
  float* kT = nullptr;  // [B * Hkv][key blocks][D][kKeyBlock]; null: k read in place
  float* v = nullptr;   // [B * Hkv][Sk][Dv] when v is not f32 and k is packed; else null
  int64_t key_blocks = 0;
  std::unique_ptr<float[]> owned;  // a call larger than the kept buffer
};

float* pack_storage(size_t floats, std::unique_ptr<float[]>& owned) {
  thread_local std::unique_ptr<float[]> kept;
  thread_local size_t kept_floats = 0;
  if (floats > kKeptPackFloats) {
    owned.reset(new float[floats]);
    return owned.get();
  }
  if (floats > kept_floats) {
    kept.reset(new float[floats]);
    kept_floats = floats;
  }
  return kept.get();
}

PackedKv pack_kv(const AttentionParams& p) {
  PackedKv packed;
  packed.key_blocks = (p.kv_len + kKeyBlock - 1) / kKeyBlock;
  if (keys_in_place(p)) return packed;
  const int64_t block_floats = p.head_dim * kKeyBlock;
  const int64_t heads = p.batch * p.kv_heads;
  const bool widen_v = p.dtype != DType::F32;
  const int64_t kT_floats = heads * packed.key_blocks * block_floats;
  const int64_t v_floats = widen_v ? heads * p.kv_len * p.v_dim : 0;
  packed.kT = pack_storage(static_cast<size_t>(kT_floats + v_floats), packed.owned);
  if (widen_v) packed.v = packed.kT + kT_floats;

  const int64_t items = heads * packed.key_blocks;
  parallel_for(items, grain_for(kKeyBlock * (p.head_dim + p.v_dim)), [&](int64_t begin,
                                                                         int64_t end) {
    // k^T is written 16 keys at a time: per d, one 64-byte line from 16 key rows held in L1
    // (written key by key, each key would touch D lines of a block larger than L1).
    std::vector<float> rows16(static_cast<size_t>(16 * p.head_dim));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / packed.key_blocks;
      const int64_t block = item % packed.key_blocks;
      const int64_t b = bh / p.kv_heads;
      const int64_t h = bh % p.kv_heads;
      const int64_t k0 = block * kKeyBlock;
      const int64_t keys = std::min(kKeyBlock, p.kv_len - k0);
      float* kT = packed.kT + item * block_floats;
      for (int64_t j0 = 0; j0 < keys; j0 += 16) {  // zeros up to qk's 16 columns
        const float* krow[16];
        for (int64_t t = 0; t < 16; ++t) {
          float* scratch = rows16.data() + t * p.head_dim;
          krow[t] = scratch;
          if (j0 + t >= keys) {
            std::fill(scratch, scratch + p.head_dim, 0.0f);
            continue;
          }
          const int64_t offset =
              b * p.k_stride[0] + h * p.k_stride[1] + (k0 + j0 + t) * p.k_stride[2];
          if (p.dtype == DType::F32) {
            krow[t] = static_cast<const float*>(p.k) + offset;
          } else {
            widen(element(p.k, p.dtype, offset), p.dtype, scratch, p.head_dim);
          }
        }
        for (int64_t d = 0; d < p.head_dim; ++d) {
          float* line = kT + d * kKeyBlock + j0;
          for (int64_t t = 0; t < 16; ++t) line[t] = krow[t][d];
        }
      }
      if (widen_v) {
        float* vdst = packed.v + (bh * p.kv_len + k0) * p.v_dim;
        for (int64_t j = 0; j < keys; ++j) {
          const int64_t offset = b * p.v_stride[0] + h * p.v_stride[1] + (k0 + j) * p.v_stride[2];
          widen(element(p.v, p.dtype, offset), p.dtype, vdst + j * p.v_dim, p.v_dim);
        }
      }
    }
  });
  return packed;
}

// Rounds an f32 row to f16/bf16 (f32 outputs are written in place by the caller).
void store_row(const float* src, DType dtype, void* dst, int64_t count) {
  auto* out = static_cast<uint16_t*>(dst);
  if (dtype == DType::F16) {
    for (int64_t c = 0; c < count; ++c) out[c] = f32_to_f16(src[c]);
  } else {
    for (int64_t c = 0; c < count; ++c) out[c] = f32_to_bf16(src[c]);
  }
}

// Scratch of one thread, reused across its work items. k_block and v_block hold one key block
// widened to f32 when k is read in place from f16/bf16 inputs.
struct Workspace {
  std::vector<float> q, s, o, m, l, corr, row, k_block, v_block;
  explicit Workspace(const AttentionParams& p)
      : q(static_cast<size_t>(kQueryBlock * p.head_dim)),
        s(static_cast<size_t>(kQueryBlock * kKeyBlock)),
        o(static_cast<size_t>(kQueryBlock * p.v_dim)),
        m(kQueryBlock),
        l(kQueryBlock),
        corr(kQueryBlock),
        row(static_cast<size_t>(std::max(p.head_dim, p.v_dim))) {
    if (keys_in_place(p) && p.dtype != DType::F32) {
      k_block.resize(static_cast<size_t>(kKeyBlock * p.head_dim));
      v_block.resize(static_cast<size_t>(kKeyBlock * p.v_dim));
    }
  }
};

// Rows [k0, k0 + keys) of one head's k or v as f32 rows: in place for f32, else widened into
// `scratch` (ld = width). Returns the first row and sets `ld` to the row stride.
const float* key_rows(const void* base, DType dtype, int64_t head_offset, int64_t row_stride,
                      int64_t k0, int64_t keys, int64_t width, float* scratch, int64_t& ld) {
  if (dtype == DType::F32) {
    ld = row_stride;
    return static_cast<const float*>(base) + head_offset + k0 * row_stride;
  }
  for (int64_t j = 0; j < keys; ++j) {
    widen(element(base, dtype, head_offset + (k0 + j) * row_stride), dtype, scratch + j * width,
          width);
  }
  ld = width;
  return scratch;
}

// Sets the hidden scores of one block to -inf and adds the additive mask (log2 domain).
void mask_block(const AttentionParams& p, int64_t b, int64_t h, int64_t q0, int64_t rows,
                int64_t k0, int64_t keys, float* s, int64_t ld_s) {
  if (p.mask != nullptr && !p.causal && p.sliding_window <= 0 && p.key_padding == nullptr &&
      p.mask_dtype == DType::F32 && p.mask_stride[3] == 1) {
    // An F32 additive mask alone (a relative position bias, Swin's window masks): the same sums
    // as the general loop below, row by row without its per-element dtype switch.
    const float* mask = static_cast<const float*>(p.mask) + b * p.mask_stride[0] +
                        h * p.mask_stride[1] + q0 * p.mask_stride[2] + k0;
    for (int64_t i = 0; i < rows; ++i) {
      float* srow = s + i * ld_s;
      const float* mrow = mask + i * p.mask_stride[2];
      for (int64_t j = 0; j < keys; ++j) srow[j] += mrow[j] * kLog2e;
    }
    return;
  }
  const int64_t offset = p.kv_len - p.q_len;
  if (p.mask == nullptr && p.key_padding == nullptr) {
    // Causal masking and the window alone hide a suffix (keys after the row's position) and a
    // prefix (keys at least `window` before it) of each row.
    for (int64_t i = 0; i < rows; ++i) {
      float* srow = s + i * ld_s;
      const int64_t pos = q0 + i + offset;
      const int64_t hide_from = p.causal ? std::clamp<int64_t>(pos + 1 - k0, 0, keys) : keys;
      const int64_t hide_to = p.sliding_window > 0
                                  ? std::clamp<int64_t>(pos - p.sliding_window + 1 - k0, 0, keys)
                                  : 0;
      std::fill(srow, srow + std::min(hide_to, hide_from), kNegInf);
      std::fill(srow + hide_from, srow + keys, kNegInf);
    }
    return;
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* srow = s + i * ld_s;
    const int64_t pos = q0 + i + offset;
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t key = k0 + j;
      bool hidden = (p.causal && key > pos) || (p.sliding_window > 0 && pos - key >= p.sliding_window);
      if (!hidden && p.key_padding) {
        hidden = !load_keep(p.key_padding, p.key_padding_dtype,
                            b * p.key_padding_stride[0] + key * p.key_padding_stride[1]);
      }
      if (!hidden && p.mask) {
        const int64_t index = b * p.mask_stride[0] + h * p.mask_stride[1] +
                              (q0 + i) * p.mask_stride[2] + key * p.mask_stride[3];
        if (p.mask_dtype == DType::BOOL) {
          hidden = static_cast<const uint8_t*>(p.mask)[index] == 0;
        } else {
          srow[j] += load_float(p.mask, p.mask_dtype, index) * kLog2e;
        }
      }
      if (hidden) srow[j] = kNegInf;
    }
  }
}

void attention_item(const AttentionParams& p, const PackedKv& packed, const BlockKernels& kernels,
                    int64_t b, int64_t h, int64_t q0, Workspace& w) {
  const int64_t rows = std::min(kQueryBlock, p.q_len - q0);
  const int64_t D = p.head_dim;
  const int64_t Dv = p.v_dim;
  const int64_t hk = h / (p.q_heads / p.kv_heads);
  const int64_t bhk = b * p.kv_heads + hk;
  const float q_scale = p.scale * kLog2e;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t offset = b * p.q_stride[0] + h * p.q_stride[1] + (q0 + i) * p.q_stride[2];
    float* qrow = w.q.data() + i * D;
    const float* src = qrow;
    if (p.dtype == DType::F32) {
      src = static_cast<const float*>(p.q) + offset;
    } else {
      widen(element(p.q, p.dtype, offset), p.dtype, qrow, D);
    }
    for (int64_t d = 0; d < D; ++d) qrow[d] = src[d] * q_scale;
  }
  std::fill(w.m.begin(), w.m.begin() + rows, kNegInf);
  std::fill(w.l.begin(), w.l.begin() + rows, 0.0f);
  std::fill(w.o.begin(), w.o.begin() + rows * Dv, 0.0f);

  // Keys that causal masking and the window leave visible to some row of the block.
  const int64_t pos_first = q0 + p.kv_len - p.q_len;
  const int64_t pos_last = pos_first + rows - 1;
  int64_t key_begin = 0;
  int64_t key_end = p.kv_len;
  if (p.causal) key_end = std::min(key_end, pos_last + 1);
  if (p.sliding_window > 0) key_begin = std::max<int64_t>(0, pos_first - p.sliding_window + 1);

  const int64_t k_head = b * p.k_stride[0] + hk * p.k_stride[1];
  const int64_t v_head = b * p.v_stride[0] + hk * p.v_stride[1];
  const bool element_masks = p.mask != nullptr || p.key_padding != nullptr;
  for (int64_t block = key_begin / kKeyBlock; block * kKeyBlock < key_end; ++block) {
    const int64_t k0 = block * kKeyBlock;
    const int64_t keys = std::min(kKeyBlock, p.kv_len - k0);
    if (packed.kT) {
      const float* kT = packed.kT + (bhk * packed.key_blocks + block) * D * kKeyBlock;
      kernels.qk(w.q.data(), D, rows, D, kT, kKeyBlock, (keys + 15) / 16 * 16, w.s.data(),
                 kKeyBlock);
    } else {
      int64_t ld_k = 0;
      const float* k = key_rows(p.k, p.dtype, k_head, p.k_stride[2], k0, keys, D,
                                w.k_block.data(), ld_k);
      kernels.qk_in_place(w.q.data(), D, rows, D, k, ld_k, keys, w.s.data(), kKeyBlock);
    }
    const bool cut_by_causal = p.causal && k0 + keys - 1 > pos_first;
    const bool cut_by_window = p.sliding_window > 0 && pos_last - k0 >= p.sliding_window;
    if (element_masks || cut_by_causal || cut_by_window) {
      mask_block(p, b, h, q0, rows, k0, keys, w.s.data(), kKeyBlock);
    }
    kernels.softmax(w.s.data(), kKeyBlock, rows, keys, w.m.data(), w.l.data(), w.corr.data());
    int64_t ld_v = Dv;
    const float* v = packed.v ? packed.v + (bhk * p.kv_len + k0) * Dv
                              : key_rows(p.v, p.dtype, v_head, p.v_stride[2], k0, keys, Dv,
                                         w.v_block.data(), ld_v);
    kernels.pv(w.s.data(), kKeyBlock, rows, keys, v, ld_v, Dv, w.corr.data(), w.o.data(), Dv);
  }

  for (int64_t i = 0; i < rows; ++i) {
    const float inv = w.l[i] > 0.0f ? 1.0f / w.l[i] : 0.0f;
    const float* orow = w.o.data() + i * Dv;
    const int64_t offset = b * p.out_stride[0] + h * p.out_stride[1] + (q0 + i) * p.out_stride[2];
    float* dst = p.dtype == DType::F32 ? static_cast<float*>(p.out) + offset : w.row.data();
    for (int64_t c = 0; c < Dv; ++c) dst[c] = orow[c] * inv;
    if (p.dtype != DType::F32) {
      store_row(w.row.data(), p.dtype, static_cast<std::byte*>(p.out) +
                                           offset * static_cast<int64_t>(dtype_size(p.dtype)),
                Dv);
    }
    if (p.lse) {
      p.lse[(b * p.q_heads + h) * p.q_len + q0 + i] =
          w.l[i] > 0.0f ? (w.m[i] + std::log2(w.l[i])) * kLn2 : kNegInf;
    }
  }
}

}  // namespace

void attention_cpu(const AttentionParams& p) {
  if (p.batch == 0 || p.q_heads == 0 || p.q_len == 0) return;
  const PackedKv packed = pack_kv(p);
  const BlockKernels& kernels = block_kernels();
  const int64_t q_blocks = (p.q_len + kQueryBlock - 1) / kQueryBlock;
  const int64_t items = p.batch * p.q_heads * q_blocks;
  const int64_t work_per_item =
      std::min(kQueryBlock, p.q_len) * std::max<int64_t>(1, p.kv_len) * (p.head_dim + p.v_dim);
  parallel_for(items, grain_for(work_per_item), [&](int64_t begin, int64_t end) {
    Workspace workspace(p);
    for (int64_t item = begin; item < end; ++item) {
      // Zig-zag the query blocks of each head (0, n-1, 1, n-2, ...) so that a contiguous range
      // of items holds as many cheap early causal blocks as expensive late ones.
      const int64_t bh = item / q_blocks;
      const int64_t r = item % q_blocks;
      const int64_t qb = r % 2 == 0 ? r / 2 : q_blocks - 1 - r / 2;
      attention_item(p, packed, kernels, bh / p.q_heads, bh % p.q_heads, qb * kQueryBlock,
                     workspace);
    }
  });
}

}  // namespace hfport
