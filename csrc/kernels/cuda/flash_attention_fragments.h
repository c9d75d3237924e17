// The index arithmetic of the flash attention kernel (flash_attention.cu), kept apart from the
// kernel so that a host test (tests/cpp/test_flash_fragments.cpp) can check every line of it
// without a GPU: which element of a tile each lane's registers hold, which shared memory row each
// lane hands to ldmatrix, how the score accumulators become the A operand of P.V, which lanes
// share a row, which key tiles a block of queries visits and which of them need element masks.
// Plain C++ (constexpr, no CUDA header): the kernel and the test call the same functions.
//
// Vocabulary. One warp computes a 16-row slice with mma.sync.aligned.m16n8k16.row.col (f16 or
// bf16 operands, f32 accumulators). PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating
// point type", with groupID = lane >> 2 and threadID_in_group = lane % 4:
//   A (16 x 16, row):  8 elements a0..a7 in 4 registers (two 16-bit halves each, low half first)
//                      row = groupID for a0, a1, a4, a5; groupID + 8 for a2, a3, a6, a7
//                      col = threadID_in_group * 2 + (i & 1), plus 8 for a4..a7
//   B (16 x 8, col):   4 elements b0..b3 in 2 registers
//                      row (k) = threadID_in_group * 2 + (i & 1), plus 8 for b2, b3; col (n) = groupID
//   C, D (16 x 8 f32): 4 elements c0..c3, one register each
//                      row = groupID for c0, c1; groupID + 8 for c2, c3
//                      col = threadID_in_group * 2 + (i & 1)
// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16 loads four 8 x 8 matrices of 16-bit elements:
// lanes 8j..8j+7 give the addresses of rows 0..7 of matrix j (16 contiguous bytes each), and
// register j of lane l receives matrix j's elements (row l >> 2, cols 2 (l % 4) and 2 (l % 4) + 1)
// without .trans, or (rows 2 (l % 4) and 2 (l % 4) + 1, col l >> 2) with .trans.
#pragma once

#ifndef HFPORT_HOST_DEVICE
#if defined(__CUDACC__)
#define HFPORT_HOST_DEVICE __host__ __device__
#else
#define HFPORT_HOST_DEVICE
#endif
#endif

namespace hfport::cuda::flash {

// The compile-time shape of one kernel instantiation.
//   kWarps     warps per thread block.
//   kMTiles    m16 tiles per warp: a warp owns rows [kRowsPerWarp * warp, + kRowsPerWarp) for the
//              whole kernel. Every K and V fragment a warp reads from shared memory feeds
//              kMTiles mma, so shared memory traffic per FLOP falls as 1 / kMTiles; the cost is
//              registers (the O accumulator is kMTiles * D / 2 floats per thread).
//   kBlockN    keys per K/V tile.
//   kQInRegisters  the warp's Q fragments (kMTiles * D / 4 registers per thread) are loaded once;
//              otherwise they are re-read from shared memory at every tile.
//   kRowStride shared memory row pitch in elements: D + 8. The extra 16 bytes shift each row by
//              4 banks (D is a multiple of 16, so (D + 8) / 2 words is an odd multiple of 4), so
//              the eight 16-byte rows an ldmatrix phase reads fall in eight distinct bank quads.
template <int D, int Warps, int MTiles, int BlockN, bool QInRegisters>
struct FlashShape {
  static_assert(D % 16 == 0 && D >= 16 && D <= 256, "head dim must be a multiple of 16, <= 256");
  static_assert(BlockN % 16 == 0, "keys come in k16 steps and pairs of n8 tiles");
  static constexpr int kHeadDim = D;
  static constexpr int kWarps = Warps;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMTiles = MTiles;
  static constexpr int kRowsPerWarp = 16 * kMTiles;
  static constexpr int kBlockM = kRowsPerWarp * kWarps;
  static constexpr int kBlockN = BlockN;
  static constexpr bool kQInRegisters = QInRegisters;
  static constexpr int kRowStride = D + 8;
  static constexpr int kElementBytes = 2;
  // Shared memory: the Q tile (later the output staging), two K and two V tiles (double
  // buffered), and two rows of per-key biases (0 or -inf: key padding and keys past the end).
  static constexpr int kQElements = kBlockM * kRowStride;
  static constexpr int kKvElements = kBlockN * kRowStride;
  static constexpr int kSmemBytes =
      (kQElements + 4 * kKvElements) * kElementBytes + 2 * kBlockN * 4;
};

// The shape each head dim is built with: the most shared-memory reuse (kMTiles = 2, Q in
// registers) that ptxas fits in 255 registers without spilling, at sm_80 and sm_90a
// (docs/attention-notes.md has the arithmetic and the register counts).
template <int D>
struct FlashTraits;
template <>
struct FlashTraits<64> : FlashShape<64, 4, 2, 64, true> {};
template <>
struct FlashTraits<80> : FlashShape<80, 4, 2, 32, true> {};
template <>
struct FlashTraits<96> : FlashShape<96, 4, 2, 32, true> {};
template <>
struct FlashTraits<128> : FlashShape<128, 4, 2, 32, false> {};
template <>
struct FlashTraits<256> : FlashShape<256, 8, 1, 32, false> {};

struct Coord {
  int row;
  int col;
};

HFPORT_HOST_DEVICE constexpr int group_of(int lane) { return lane >> 2; }
HFPORT_HOST_DEVICE constexpr int thread_in_group(int lane) { return lane & 3; }

// Element i (0..7) of the A fragment held by `lane`: register i / 2, half i % 2.
HFPORT_HOST_DEVICE constexpr Coord mma_a_element(int lane, int i) {
  return {group_of(lane) + ((i & 2) ? 8 : 0), thread_in_group(lane) * 2 + (i & 1) + ((i & 4) ? 8 : 0)};
}

// Element i (0..3) of the B fragment: row is k, col is n.
HFPORT_HOST_DEVICE constexpr Coord mma_b_element(int lane, int i) {
  return {thread_in_group(lane) * 2 + (i & 1) + ((i & 2) ? 8 : 0), group_of(lane)};
}

// Element i (0..3) of the C/D fragment.
HFPORT_HOST_DEVICE constexpr Coord mma_c_element(int lane, int i) {
  return {group_of(lane) + ((i & 2) ? 8 : 0), thread_in_group(lane) * 2 + (i & 1)};
}

// The lanes that hold elements of one accumulator row are the four of a quad (lanes 4g..4g+3,
// the same groupID): a row reduction is kRowReduceSteps butterfly steps, __shfl_xor with offset
// row_reduce_offset(step) = 1, then 2.
inline constexpr int kRowReduceSteps = 2;
HFPORT_HOST_DEVICE constexpr int row_reduce_offset(int step) { return 1 << step; }

// ---------------------------------------------------------------------------------------------
// ldmatrix sources: the tile coordinates (row, col) of the 8-element row whose address `lane`
// passes to ldmatrix.x4, relative to the 16 x 16 block being loaded. Shared memory tiles are
// row-major with kRowStride elements per row.

// Q as the A operand of S = Q K^T, rows = queries, cols = head dim. Register j must hold A's
// register j: j = 0 rows 0-7 / cols 0-7, 1 rows 8-15 / cols 0-7, 2 rows 0-7 / cols 8-15,
// 3 rows 8-15 / cols 8-15.
HFPORT_HOST_DEVICE constexpr Coord q_ldmatrix_source(int lane) {
  const int matrix = lane >> 3;
  return {(matrix & 1) * 8 + (lane & 7), (matrix >> 1) * 8};
}

// K as the B operand of S = Q K^T (k = head dim, n = key), stored [key][dim], so B's columns are
// contiguous rows of K and no transpose is needed. One x4 covers two n8 tiles: registers 0, 1 are
// b0b1 and b2b3 of the tile of keys 0-7, registers 2, 3 the same for keys 8-15.
HFPORT_HOST_DEVICE constexpr Coord k_ldmatrix_source(int lane) {
  const int matrix = lane >> 3;
  return {(matrix >> 1) * 8 + (lane & 7), (matrix & 1) * 8};
}

// V as the B operand of O = P V (k = key, n = head dim), stored [key][dim]: B's columns are
// strided in memory, so ldmatrix .trans. One x4 covers 16 keys and two n8 tiles of dims:
// registers 0, 1 are b0b1 (keys 0-7) and b2b3 (keys 8-15) of dims 0-7, registers 2, 3 the same
// for dims 8-15.
HFPORT_HOST_DEVICE constexpr Coord v_ldmatrix_source(int lane) {
  const int matrix = lane >> 3;
  return {(matrix & 1) * 8 + (lane & 7), (matrix >> 1) * 8};
}

// Element offsets into the tiles (what the kernel adds to a tile's shared memory base).
// `warp_row` is the first row of the warp's 16-row slice of Q; `k_step` counts 16 head dims;
// `key_pair` counts pairs of n8 key tiles (16 keys); `key_step` counts 16 keys; `dim_pair`
// counts pairs of n8 dim tiles (16 dims).
HFPORT_HOST_DEVICE constexpr int q_ldmatrix_offset(int lane, int warp_row, int k_step, int stride) {
  const Coord c = q_ldmatrix_source(lane);
  return (warp_row + c.row) * stride + k_step * 16 + c.col;
}
HFPORT_HOST_DEVICE constexpr int k_ldmatrix_offset(int lane, int key_pair, int k_step, int stride) {
  const Coord c = k_ldmatrix_source(lane);
  return (key_pair * 16 + c.row) * stride + k_step * 16 + c.col;
}
HFPORT_HOST_DEVICE constexpr int v_ldmatrix_offset(int lane, int key_step, int dim_pair, int stride) {
  const Coord c = v_ldmatrix_source(lane);
  return (key_step * 16 + c.row) * stride + dim_pair * 16 + c.col;
}

// P = exp(S) is computed in the accumulators of S (one C fragment per n8 key tile) and fed back
// as the A operand of O = P V without going through shared memory. The invariant that allows it:
// the C fragments of two adjacent m16n8 tiles (keys 16s..16s+7 and 16s+8..16s+15) hold, lane by
// lane, exactly the elements the A fragment of the m16k16 tile (keys 16s..16s+15) wants, in
// this order: A register r = the pair (c_e, c_{e+1}) of key tile 2s + r / 2 with e = 2 (r % 2).
// (A's a0a1 / a2a3 / a4a5 / a6a7 are rows g / g+8 / g / g+8 and cols 2t / 2t / 2t+8 / 2t+8; C's
// c0c1 / c2c3 are rows g / g+8 and cols 2t within their 8-key tile.)
struct AccumulatorPair {
  int key_tile;       // n8 tile, relative to 2 * key_step
  int first_element;  // c index of the low half; the high half is first_element + 1
};
HFPORT_HOST_DEVICE constexpr AccumulatorPair p_register_source(int reg) {
  return {reg >> 1, (reg & 1) * 2};
}

// ---------------------------------------------------------------------------------------------
// Rows, positions and masks.
//
// Grouped-query attention is folded into the rows: one thread block serves one (batch, kv head)
// and the `group` = Hq / Hkv query heads that read it, stacked: row r of the group's
// group * q_len rows is query head (kv_head * group + r / q_len), query r % q_len. A decode step
// (q_len = 1) with 8 query heads per kv head then fills 8 rows of a block instead of 1, and K/V
// are read once for the group.

struct QueryRow {
  int head_in_group;
  int index;  // query index in [0, q_len)
};
HFPORT_HOST_DEVICE constexpr QueryRow packed_row(int row, int q_len) {
  return {row / q_len, row % q_len};
}

// Positions follow ops/attention.h: query i sits at key position i + kv_len - q_len.
// `offset` below is kv_len - q_len.

// The smallest and largest query position among rows [first_row, first_row + block_rows) that
// exist (< rows_total). A block that straddles two query heads sees positions from both, so it
// gets the whole range; that only widens the set of key tiles it visits and masks.
struct PositionRange {
  int min;
  int max;
};
HFPORT_HOST_DEVICE constexpr PositionRange block_positions(int first_row, int block_rows,
                                                           int rows_total, int q_len, int offset) {
  const int last_row = (first_row + block_rows < rows_total ? first_row + block_rows : rows_total) - 1;
  if (first_row / q_len == last_row / q_len) {
    return {first_row % q_len + offset, last_row % q_len + offset};
  }
  return {offset, q_len - 1 + offset};
}

// Whether causal masking or the sliding window (0: none) hides key `key` from a query at `pos`.
HFPORT_HOST_DEVICE constexpr bool key_hidden(int pos, int key, bool causal, int window) {
  return (causal && key > pos) || (window > 0 && pos - key >= window);
}

// Keys [begin, end) that some query with a position in `positions` may see; begin >= end when
// none. Tiles outside it are skipped.
struct KeyRange {
  int begin;
  int end;
};
HFPORT_HOST_DEVICE constexpr KeyRange visible_keys(PositionRange positions, int kv_len,
                                                   bool causal, int window) {
  int begin = 0;
  int end = kv_len;
  if (causal && positions.max + 1 < end) end = positions.max + 1;
  if (window > 0 && positions.min - window + 1 > begin) begin = positions.min - window + 1;
  return {begin, end};
}

// The key tiles of block_n keys that cover `keys`: tiles [first, first + count).
struct TileRange {
  int first;
  int count;
};
HFPORT_HOST_DEVICE constexpr TileRange key_tiles(KeyRange keys, int block_n) {
  if (keys.end <= keys.begin) return {0, 0};
  const int first = keys.begin / block_n;
  return {first, (keys.end + block_n - 1) / block_n - first};
}

// The window the kernel uses for a requested sliding window (0: none): at most kv_len + 1, which
// keeps it in int. No key is that far from a query (positions are at most kv_len - 1, keys at
// least 0), so the clamp hides nothing that the requested window would not.
HFPORT_HOST_DEVICE constexpr int effective_window(long long window, int kv_len) {
  if (window <= 0) return 0;
  return window < static_cast<long long>(kv_len) + 1 ? static_cast<int>(window) : kv_len + 1;
}

// Whether the tile of keys [k0, k0 + block_n) needs per-element masking for some query in
// `positions`: it runs past kv_len, or causal masking or the window cuts through it. Key padding
// is separate (every tile needs it when a padding mask is given).
HFPORT_HOST_DEVICE constexpr bool tile_needs_mask(int k0, int block_n, int kv_len,
                                                  PositionRange positions, bool causal, int window) {
  const int last = k0 + block_n - 1;
  return last >= kv_len || (causal && last > positions.min) ||
         (window > 0 && k0 <= positions.max - window);
}

}  // namespace hfport::cuda::flash
