// The index arithmetic of the CUDA flash attention kernel (kernels/cuda/flash_attention_fragments.h),
// checked on the host, where no GPU is needed: this file is the evidence that the kernel's
// registers hold the elements it thinks they hold.
//
// The hardware side is emulated from the PTX ISA's own descriptions, transcribed here a second
// time, independently of the header and in the ISA's words: the fragment layouts of
// mma.m16n8k16 (f16/bf16 operands, f32 accumulators) and what ldmatrix.m8n8.x4 (with and without
// .trans) puts in which lane's registers given the row addresses the lanes supply. On top of
// that emulation, the kernel's own address functions load tagged and numeric tiles, the emulated
// mma multiplies them, and the results are compared with plain loops: Q K^T of one warp's slice,
// P (the score accumulators repacked as an A operand) times V, the quad reductions of the online
// softmax, bank conflicts of every ldmatrix, and the tile/mask arithmetic against the masking
// rules of ops/attention.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/cuda/flash_attention_fragments.h"

namespace {

namespace flash = hfport::cuda::flash;

// ---------------------------------------------------------------------------------------------
// The PTX ISA, 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with floating point type".

struct Element {
  int row;
  int col;
  bool operator==(const Element&) const = default;
};

Element ptx_a(int laneid, int i) {
  const int groupID = laneid >> 2;
  const int threadID_in_group = laneid % 4;
  const int row = ((0 <= i && i < 2) || (4 <= i && i < 6)) ? groupID : groupID + 8;
  const int col = i < 4 ? (threadID_in_group * 2) + (i & 0x1) : (threadID_in_group * 2) + (i & 0x1) + 8;
  return {row, col};
}

Element ptx_b(int laneid, int i) {
  const int groupID = laneid >> 2;
  const int threadID_in_group = laneid % 4;
  const int row = i < 2 ? (threadID_in_group * 2) + (i & 0x1) : (threadID_in_group * 2) + (i & 0x1) + 8;
  return {row, groupID};
}

Element ptx_c(int laneid, int i) {
  const int groupID = laneid >> 2;
  const int threadID_in_group = laneid % 4;
  const int row = i < 2 ? groupID : groupID + 8;
  return {row, (threadID_in_group * 2) + (i & 0x1)};
}

Element as_element(flash::Coord c) { return {c.row, c.col}; }

// A 32-bit register holding two 16-bit elements (index 0 = the low half). Values are doubles: the
// tests use tags and small integers, so every product and sum below is exact.
using Reg = std::array<double, 2>;
using WarpX4 = std::array<std::array<Reg, 4>, 32>;  // ldmatrix.x4 result: [lane][register]
using Accumulator = std::array<std::array<double, 4>, 32>;  // one m16n8 C/D fragment per lane

// ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16 over `smem` (one entry per 16-bit element):
// threads 8j..8j+7 supply the addresses of rows 0..7 of matrix j, each 16 contiguous bytes that
// must be 16-byte aligned; each thread receives, for matrix j in register j, the elements
// (row laneid / 4, cols 2 (laneid % 4), 2 (laneid % 4) + 1), or with .trans the elements
// (rows 2 (laneid % 4), 2 (laneid % 4) + 1, col laneid / 4).
WarpX4 ldmatrix_x4(const std::vector<double>& smem, const std::array<int, 32>& row_offset,
                   bool trans) {
  for (int lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(row_offset[lane] % 8, 0) << "lane " << lane << ": a row address is not 16-byte aligned";
    EXPECT_GE(row_offset[lane], 0);
    EXPECT_LE(row_offset[lane] + 8, static_cast<int>(smem.size())) << "lane " << lane;
  }
  WarpX4 out{};
  for (int lane = 0; lane < 32; ++lane) {
    for (int j = 0; j < 4; ++j) {
      for (int h = 0; h < 2; ++h) {
        const int row = trans ? 2 * (lane % 4) + h : lane / 4;
        const int col = trans ? lane / 4 : 2 * (lane % 4) + h;
        const int at = row_offset[8 * j + row] + col;
        out[lane][j][h] = (at >= 0 && at < static_cast<int>(smem.size())) ? smem[at] : std::nan("");
      }
    }
  }
  return out;
}

// d += a b for one m16n8k16 tile, every operand in the ISA's fragment layout. `a` is A's four
// registers per lane, `b` B's two.
void mma_m16n8k16(Accumulator& d, const std::array<std::array<Reg, 4>, 32>& a,
                  const std::array<std::array<Reg, 2>, 32>& b) {
  double A[16][16];
  double B[16][8];
  int a_seen[16][16] = {};
  int b_seen[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      const Element e = ptx_a(lane, i);
      A[e.row][e.col] = a[lane][i / 2][i % 2];
      ++a_seen[e.row][e.col];
    }
    for (int i = 0; i < 4; ++i) {
      const Element e = ptx_b(lane, i);
      B[e.row][e.col] = b[lane][i / 2][i % 2];
      ++b_seen[e.row][e.col];
    }
  }
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 16; ++c) ASSERT_EQ(a_seen[r][c], 1);
    for (int c = 0; c < 8; ++c) ASSERT_EQ(b_seen[r][c], 1);
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const Element e = ptx_c(lane, i);
      double sum = 0.0;
      for (int k = 0; k < 16; ++k) sum += A[e.row][k] * B[k][e.col];
      d[lane][i] += sum;
    }
  }
}

// A row-major tile in "shared memory" with the kernel's row pitch; padding holds NaN so that a
// read of it shows.
struct Tile {
  int rows;
  int cols;
  int stride;
  std::vector<double> data;
  Tile(int rows_, int cols_, int stride_)
      : rows(rows_), cols(cols_), stride(stride_),
        data(static_cast<size_t>(rows_) * stride_, std::nan("")) {}
  double& at(int r, int c) { return data[static_cast<size_t>(r) * stride + c]; }
  double at(int r, int c) const { return data[static_cast<size_t>(r) * stride + c]; }
};

double tag(int row, int col) { return row * 1000.0 + col; }

Tile tagged_tile(int rows, int cols, int stride) {
  Tile t(rows, cols, stride);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) t.at(r, c) = tag(r, c);
  }
  return t;
}

Tile random_tile(int rows, int cols, int stride, std::mt19937& rng) {
  std::uniform_int_distribution<int> small(-3, 3);
  Tile t(rows, cols, stride);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) t.at(r, c) = small(rng);
  }
  return t;
}

template <typename OffsetFn>
std::array<int, 32> lane_offsets(OffsetFn offset) {
  std::array<int, 32> out{};
  for (int lane = 0; lane < 32; ++lane) out[lane] = offset(lane);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layouts.

TEST(FlashFragments, HeaderLayoutsAreThePtxLayouts) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(as_element(flash::mma_a_element(lane, i)), ptx_a(lane, i)) << lane << " a" << i;
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(as_element(flash::mma_b_element(lane, i)), ptx_b(lane, i)) << lane << " b" << i;
      EXPECT_EQ(as_element(flash::mma_c_element(lane, i)), ptx_c(lane, i)) << lane << " c" << i;
    }
  }
}

TEST(FlashFragments, FragmentsCoverTheirTilesOnce) {
  std::set<std::pair<int, int>> a, b, c;
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) a.insert({ptx_a(lane, i).row, ptx_a(lane, i).col});
    for (int i = 0; i < 4; ++i) {
      b.insert({ptx_b(lane, i).row, ptx_b(lane, i).col});
      c.insert({ptx_c(lane, i).row, ptx_c(lane, i).col});
    }
  }
  EXPECT_EQ(a.size(), 256u);
  EXPECT_EQ(b.size(), 128u);
  EXPECT_EQ(c.size(), 128u);
}

// The kernel takes accumulator elements 0, 1 as one row (its rows[0]) and 2, 3 as another
// (rows[1]), and stores (2h, 2h + 1) as one packed pair at adjacent columns.
TEST(FlashFragments, AccumulatorPairsShareARowAndAdjacentColumns) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int h = 0; h < 2; ++h) {
      const Element low = ptx_c(lane, 2 * h);
      const Element high = ptx_c(lane, 2 * h + 1);
      EXPECT_EQ(low.row, high.row);
      EXPECT_EQ(low.col + 1, high.col);
      EXPECT_EQ(low.col % 2, 0);
      EXPECT_EQ(flash::mma_c_element(lane, 2 * h).row, low.row);
    }
    EXPECT_EQ(ptx_c(lane, 2).row, ptx_c(lane, 0).row + 8);
  }
}

// P's C -> A reuse: A register r of key step s is the pair (c_e, c_e+1) of key tile 2s + r / 2.
TEST(FlashFragments, ScoreAccumulatorsAreTheAOperandOfPV) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg) {
      const flash::AccumulatorPair src = flash::p_register_source(reg);
      ASSERT_GE(src.key_tile, 0);
      ASSERT_LE(src.key_tile, 1);
      for (int h = 0; h < 2; ++h) {
        const Element c = ptx_c(lane, src.first_element + h);
        const Element in_a{c.row, src.key_tile * 8 + c.col};  // cols of the 16-key A tile
        EXPECT_EQ(in_a, ptx_a(lane, 2 * reg + h)) << "lane " << lane << " register " << reg;
      }
    }
  }
}

// The lanes holding a row are one quad, closed under the kernel's xor offsets, and the butterfly
// leaves every lane of the quad with the row's maximum and sum.
TEST(FlashFragments, RowReductionsStayInTheQuadThatOwnsTheRow) {
  std::array<std::set<int>, 16> owners;
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) owners[ptx_c(lane, i).row].insert(lane);
  }
  for (int row = 0; row < 16; ++row) {
    ASSERT_EQ(owners[row].size(), 4u) << "row " << row;
    for (int lane : owners[row]) {
      for (int step = 0; step < flash::kRowReduceSteps; ++step) {
        EXPECT_TRUE(owners[row].count(lane ^ flash::row_reduce_offset(step)))
            << "row " << row << " lane " << lane << " step " << step;
      }
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> value(-5.0, 5.0);
  double tile[16][8];
  for (auto& row : tile) {
    for (double& x : row) x = value(rng);
  }
  for (int h = 0; h < 2; ++h) {
    std::array<double, 32> partial_max{}, partial_sum{};
    for (int lane = 0; lane < 32; ++lane) {
      partial_max[lane] = -std::numeric_limits<double>::infinity();
      for (int e = 2 * h; e < 2 * h + 2; ++e) {
        const Element el = ptx_c(lane, e);
        partial_max[lane] = std::max(partial_max[lane], tile[el.row][el.col]);
        partial_sum[lane] += tile[el.row][el.col];
      }
    }
    for (int step = 0; step < flash::kRowReduceSteps; ++step) {
      const std::array<double, 32> max_before = partial_max, sum_before = partial_sum;
      for (int lane = 0; lane < 32; ++lane) {
        const int other = lane ^ flash::row_reduce_offset(step);
        partial_max[lane] = std::max(max_before[lane], max_before[other]);
        partial_sum[lane] = sum_before[lane] + sum_before[other];
      }
    }
    for (int lane = 0; lane < 32; ++lane) {
      const int row = ptx_c(lane, 2 * h).row;
      double expected_max = -std::numeric_limits<double>::infinity(), expected_sum = 0.0;
      for (int col = 0; col < 8; ++col) {
        expected_max = std::max(expected_max, tile[row][col]);
        expected_sum += tile[row][col];
      }
      EXPECT_EQ(partial_max[lane], expected_max) << "lane " << lane;
      EXPECT_NEAR(partial_sum[lane], expected_sum, 1e-12) << "lane " << lane;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ldmatrix with the kernel's addresses, per head dim.

template <int D>
void check_q_fragments() {
  using Traits = flash::FlashTraits<D>;
  const Tile q = tagged_tile(Traits::kBlockM, D, Traits::kRowStride);
  std::vector<int> row_uses(Traits::kBlockM, 0);
  for (int warp = 0; warp < Traits::kWarps; ++warp) {
    for (int m = 0; m < Traits::kMTiles; ++m) {
      const int first = warp * Traits::kRowsPerWarp + 16 * m;  // the kernel's warp_row + 16 m
      for (int row = first; row < first + 16; ++row) ++row_uses[row];
      for (int ks = 0; ks < D / 16; ++ks) {
        const WarpX4 regs = ldmatrix_x4(q.data, lane_offsets([&](int lane) {
          return flash::q_ldmatrix_offset(lane, first, ks, Traits::kRowStride);
        }), false);
        for (int lane = 0; lane < 32; ++lane) {
          for (int i = 0; i < 8; ++i) {
            const Element e = ptx_a(lane, i);
            ASSERT_EQ(regs[lane][i / 2][i % 2], tag(first + e.row, ks * 16 + e.col))
                << "D " << D << " warp " << warp << " m tile " << m << " k step " << ks
                << " lane " << lane << " a" << i;
          }
        }
      }
    }
  }
  for (int row = 0; row < Traits::kBlockM; ++row) {
    EXPECT_EQ(row_uses[row], 1) << "D " << D << ": row " << row << " of the Q tile";
  }
}

template <int D>
void check_k_fragments() {
  using Traits = flash::FlashTraits<D>;
  const Tile k = tagged_tile(Traits::kBlockN, D, Traits::kRowStride);  // [key][dim]
  for (int pair = 0; pair < Traits::kBlockN / 16; ++pair) {
    for (int ks = 0; ks < D / 16; ++ks) {
      const WarpX4 regs = ldmatrix_x4(k.data, lane_offsets([&](int lane) {
        return flash::k_ldmatrix_offset(lane, pair, ks, Traits::kRowStride);
      }), false);
      for (int lane = 0; lane < 32; ++lane) {
        for (int half = 0; half < 2; ++half) {  // n8 tile 2 pair + half: registers 2 half, 2 half + 1
          for (int i = 0; i < 4; ++i) {
            const Element e = ptx_b(lane, i);  // row = k = dim, col = n = key
            ASSERT_EQ(regs[lane][2 * half + i / 2][i % 2],
                      tag((2 * pair + half) * 8 + e.col, ks * 16 + e.row))
                << "D " << D << " key pair " << pair << " k step " << ks << " lane " << lane;
          }
        }
      }
    }
  }
}

template <int D>
void check_v_fragments() {
  using Traits = flash::FlashTraits<D>;
  const Tile v = tagged_tile(Traits::kBlockN, D, Traits::kRowStride);  // [key][dim]
  for (int ks = 0; ks < Traits::kBlockN / 16; ++ks) {
    for (int pair = 0; pair < D / 16; ++pair) {
      const WarpX4 regs = ldmatrix_x4(v.data, lane_offsets([&](int lane) {
        return flash::v_ldmatrix_offset(lane, ks, pair, Traits::kRowStride);
      }), true);
      for (int lane = 0; lane < 32; ++lane) {
        for (int half = 0; half < 2; ++half) {  // dim tile 2 pair + half
          for (int i = 0; i < 4; ++i) {
            const Element e = ptx_b(lane, i);  // row = k = key, col = n = dim
            ASSERT_EQ(regs[lane][2 * half + i / 2][i % 2],
                      tag(ks * 16 + e.row, (2 * pair + half) * 8 + e.col))
                << "D " << D << " key step " << ks << " dim pair " << pair << " lane " << lane;
          }
        }
      }
    }
  }
}

TEST(FlashFragments, LdmatrixAddressesLoadQAsTheAOperand) {
  check_q_fragments<64>();
  check_q_fragments<80>();
  check_q_fragments<96>();
  check_q_fragments<128>();
  check_q_fragments<256>();
}

TEST(FlashFragments, LdmatrixAddressesLoadKAsTheBOperandOfQKt) {
  check_k_fragments<64>();
  check_k_fragments<80>();
  check_k_fragments<96>();
  check_k_fragments<128>();
  check_k_fragments<256>();
}

TEST(FlashFragments, LdmatrixTransAddressesLoadVAsTheBOperandOfPV) {
  check_v_fragments<64>();
  check_v_fragments<80>();
  check_v_fragments<96>();
  check_v_fragments<128>();
  check_v_fragments<256>();
}

// Each 8-lane phase of an ldmatrix reads eight 16-byte rows; with the padded row pitch they must
// fall in eight distinct 4-bank groups (a conflict would not be wrong, only slow).
template <int D>
void check_bank_conflicts() {
  using Traits = flash::FlashTraits<D>;
  const auto check = [](const std::array<int, 32>& offsets, const std::string& what) {
    for (int phase = 0; phase < 4; ++phase) {
      std::set<int> banks;
      for (int r = 0; r < 8; ++r) {
        const int byte = offsets[8 * phase + r] * 2;
        for (int word = 0; word < 4; ++word) banks.insert((byte / 4 + word) % 32);
      }
      EXPECT_EQ(banks.size(), 32u) << what << " phase " << phase << " D " << D;
    }
  };
  for (int ks = 0; ks < D / 16; ++ks) {
    check(lane_offsets([&](int lane) {
      return flash::q_ldmatrix_offset(lane, 16, ks, Traits::kRowStride);
    }), "q");
    for (int pair = 0; pair < Traits::kBlockN / 16; ++pair) {
      check(lane_offsets([&](int lane) {
        return flash::k_ldmatrix_offset(lane, pair, ks, Traits::kRowStride);
      }), "k");
    }
  }
  for (int ks = 0; ks < Traits::kBlockN / 16; ++ks) {
    for (int pair = 0; pair < D / 16; ++pair) {
      check(lane_offsets([&](int lane) {
        return flash::v_ldmatrix_offset(lane, ks, pair, Traits::kRowStride);
      }), "v");
    }
  }
}

TEST(FlashFragments, LdmatrixReadsAreFreeOfBankConflicts) {
  check_bank_conflicts<64>();
  check_bank_conflicts<80>();
  check_bank_conflicts<96>();
  check_bank_conflicts<128>();
  check_bank_conflicts<256>();
}

// ---------------------------------------------------------------------------------------------
// One warp's tile, end to end: S = Q K^T from the kernel's ldmatrix addresses through emulated
// mma, then O = P V with P taken from S's accumulators as the kernel repacks them and V through
// ldmatrix.trans, both compared with plain loops. (P = S here: the softmax between them is
// per-element arithmetic on registers, and the point is where each value travels.)

template <int D>
void check_warp_tile(int warp, int m, std::mt19937& rng) {
  using Traits = flash::FlashTraits<D>;
  constexpr int kN = Traits::kBlockN;
  ASSERT_LT(warp, Traits::kWarps);
  ASSERT_LT(m, Traits::kMTiles);
  const int first = warp * Traits::kRowsPerWarp + 16 * m;  // the kernel's warp_row + 16 m
  const Tile q = random_tile(Traits::kBlockM, D, Traits::kRowStride, rng);
  const Tile k = random_tile(kN, D, Traits::kRowStride, rng);
  const Tile v = random_tile(kN, D, Traits::kRowStride, rng);

  std::vector<Accumulator> s(kN / 8, Accumulator{});
  for (int ks = 0; ks < D / 16; ++ks) {
    const WarpX4 qa = ldmatrix_x4(q.data, lane_offsets([&](int lane) {
      return flash::q_ldmatrix_offset(lane, first, ks, Traits::kRowStride);
    }), false);
    for (int pair = 0; pair < kN / 16; ++pair) {
      const WarpX4 kb = ldmatrix_x4(k.data, lane_offsets([&](int lane) {
        return flash::k_ldmatrix_offset(lane, pair, ks, Traits::kRowStride);
      }), false);
      for (int half = 0; half < 2; ++half) {
        std::array<std::array<Reg, 2>, 32> b{};
        for (int lane = 0; lane < 32; ++lane) b[lane] = {kb[lane][2 * half], kb[lane][2 * half + 1]};
        mma_m16n8k16(s[2 * pair + half], qa, b);
      }
    }
  }
  double S[16][kN];
  for (int row = 0; row < 16; ++row) {
    for (int key = 0; key < kN; ++key) {
      double dot = 0.0;
      for (int d = 0; d < D; ++d) dot += q.at(first + row, d) * k.at(key, d);
      S[row][key] = dot;
    }
  }
  for (int j = 0; j < kN / 8; ++j) {
    for (int lane = 0; lane < 32; ++lane) {
      for (int e = 0; e < 4; ++e) {
        const flash::Coord c = flash::mma_c_element(lane, e);  // what the kernel's masks use
        ASSERT_EQ(s[j][lane][e], S[c.row][j * 8 + c.col])
            << "D " << D << " warp " << warp << " m tile " << m << " key tile " << j
            << " lane " << lane;
      }
    }
  }

  std::vector<Accumulator> o(D / 8, Accumulator{});
  for (int ks = 0; ks < kN / 16; ++ks) {
    std::array<std::array<Reg, 4>, 32> pa{};
    for (int lane = 0; lane < 32; ++lane) {
      for (int reg = 0; reg < 4; ++reg) {
        const flash::AccumulatorPair src = flash::p_register_source(reg);
        const Accumulator& acc = s[2 * ks + src.key_tile];
        pa[lane][reg] = {acc[lane][src.first_element], acc[lane][src.first_element + 1]};
      }
    }
    for (int pair = 0; pair < D / 16; ++pair) {
      const WarpX4 vb = ldmatrix_x4(v.data, lane_offsets([&](int lane) {
        return flash::v_ldmatrix_offset(lane, ks, pair, Traits::kRowStride);
      }), true);
      for (int half = 0; half < 2; ++half) {
        std::array<std::array<Reg, 2>, 32> b{};
        for (int lane = 0; lane < 32; ++lane) b[lane] = {vb[lane][2 * half], vb[lane][2 * half + 1]};
        mma_m16n8k16(o[2 * pair + half], pa, b);
      }
    }
  }
  for (int j = 0; j < D / 8; ++j) {
    for (int lane = 0; lane < 32; ++lane) {
      for (int e = 0; e < 4; ++e) {
        const flash::Coord c = flash::mma_c_element(lane, e);  // what the kernel's epilogue uses
        double expected = 0.0;
        for (int key = 0; key < kN; ++key) expected += S[c.row][key] * v.at(key, j * 8 + c.col);
        ASSERT_EQ(o[j][lane][e], expected)
            << "D " << D << " warp " << warp << " m tile " << m << " dim tile " << j
            << " lane " << lane;
      }
    }
  }
}

TEST(FlashFragments, WarpComputesQKtAndPVLikePlainLoops) {
  std::mt19937 rng(2024);
  for (int warp : {0, 3}) {
    for (int m = 0; m < 2; ++m) {
      check_warp_tile<64>(warp, m, rng);
      check_warp_tile<80>(warp, m, rng);
      check_warp_tile<96>(warp, m, rng);
      check_warp_tile<128>(warp, m, rng);
    }
    check_warp_tile<256>(warp, 0, rng);
  }
  check_warp_tile<256>(7, 0, rng);
}

// The emulation itself can fail: a transposed V load (no .trans) breaks the P V product.
TEST(FlashFragments, EmulationCatchesAWrongLoad) {
  using Traits = flash::FlashTraits<64>;
  const Tile v = tagged_tile(Traits::kBlockN, 64, Traits::kRowStride);
  const WarpX4 plain = ldmatrix_x4(v.data, lane_offsets([&](int lane) {
    return flash::v_ldmatrix_offset(lane, 0, 0, Traits::kRowStride);
  }), false);
  int mismatches = 0;
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const Element e = ptx_b(lane, i);
      if (plain[lane][i / 2][i % 2] != tag(e.row, e.col)) ++mismatches;
    }
  }
  EXPECT_GT(mismatches, 0);
}

// ---------------------------------------------------------------------------------------------
// Rows, tiles and masks against ops/attention.h's rules, on many small shapes and on
// the kernel's own block sizes.

// attention.h: "causal: key position > query position; sliding_window: query position - key
// position >= window" hide a key; query i sits at position i + (Sk - Sq).
bool visible(int64_t i, int64_t key, int64_t q_len, int64_t kv_len, bool causal, int64_t window) {
  const int64_t position = i + (kv_len - q_len);
  if (causal && key > position) return false;
  if (window > 0 && position - key >= window) return false;
  return true;
}

void check_blocks(int block_m, int block_n, int q_len, int kv_len, int group, bool causal,
                  int64_t window) {
  const int rows_total = group * q_len;
  const int offset = kv_len - q_len;
  const int kernel_window = flash::effective_window(window, kv_len);
  const std::string where = "block " + std::to_string(block_m) + "x" + std::to_string(block_n) +
                            " q_len " + std::to_string(q_len) + " kv_len " +
                            std::to_string(kv_len) + " group " + std::to_string(group) +
                            " causal " + std::to_string(causal) + " window " +
                            std::to_string(window);
  for (int first_row = 0; first_row < rows_total; first_row += block_m) {
    const flash::PositionRange positions =
        flash::block_positions(first_row, block_m, rows_total, q_len, offset);
    const flash::KeyRange keys = flash::visible_keys(positions, kv_len, causal, kernel_window);
    const flash::TileRange tiles = flash::key_tiles(keys, block_n);
    ASSERT_GE(tiles.count, 0) << where;
    ASSERT_GE(tiles.first, 0) << where;
    ASSERT_LE((tiles.first + tiles.count) * block_n, kv_len + block_n - 1) << where;
    std::set<int> tiles_needed;
    for (int row = first_row; row < std::min(first_row + block_m, rows_total); ++row) {
      const flash::QueryRow query = flash::packed_row(row, q_len);
      ASSERT_EQ(query.head_in_group * q_len + query.index, row);
      ASSERT_GE(query.index, 0);
      ASSERT_LT(query.index, q_len);
      const int position = query.index + offset;
      ASSERT_GE(position, positions.min) << where;
      ASSERT_LE(position, positions.max) << where;
      for (int key = 0; key < kv_len; ++key) {
        const bool seen = visible(query.index, key, q_len, kv_len, causal, window);
        ASSERT_EQ(!flash::key_hidden(position, key, causal, kernel_window), seen)
            << where << " row " << row << " key " << key;
        if (seen) tiles_needed.insert(key / block_n);
      }
    }
    for (int tile : tiles_needed) {
      EXPECT_GE(tile, tiles.first) << where << " skips a tile with a visible key";
      EXPECT_LT(tile, tiles.first + tiles.count) << where << " skips a tile with a visible key";
    }
    for (int tile = tiles.first; tile < tiles.first + tiles.count; ++tile) {
      const int k0 = tile * block_n;
      if (flash::tile_needs_mask(k0, block_n, kv_len, positions, causal, kernel_window)) continue;
      for (int row = first_row; row < std::min(first_row + block_m, rows_total); ++row) {
        const int i = flash::packed_row(row, q_len).index;
        for (int key = k0; key < k0 + block_n; ++key) {
          ASSERT_LT(key, kv_len) << where << ": unmasked tile " << tile << " runs past the end";
          ASSERT_TRUE(visible(i, key, q_len, kv_len, causal, window))
              << where << ": unmasked tile " << tile << " hides key " << key << " from row " << row;
        }
      }
    }
  }
}

TEST(FlashFragments, TilesCoverEveryVisibleKeyAndUnmaskedTilesHideNothing) {
  const std::vector<std::pair<int, int>> blocks = {{3, 2}, {4, 4}, {5, 8}, {16, 16}};
  for (const auto& [block_m, block_n] : blocks) {
    for (int q_len : {1, 2, 3, 7, 17}) {
      for (int kv_len : {0, 1, 2, 5, 9, 17, 33}) {
        for (int group : {1, 3}) {
          for (bool causal : {false, true}) {
            for (int64_t window : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{5}, int64_t{40},
                                   int64_t{1} << 40}) {
              check_blocks(block_m, block_n, q_len, kv_len, group, causal, window);
            }
          }
        }
      }
    }
  }
}

TEST(FlashFragments, TilesAtTheKernelsBlockSizes) {
  const std::vector<std::pair<int, int>> blocks = {
      {flash::FlashTraits<64>::kBlockM, flash::FlashTraits<64>::kBlockN},
      {flash::FlashTraits<80>::kBlockM, flash::FlashTraits<80>::kBlockN},
      {flash::FlashTraits<128>::kBlockM, flash::FlashTraits<128>::kBlockN},
      {flash::FlashTraits<256>::kBlockM, flash::FlashTraits<256>::kBlockN}};
  for (const auto& [block_m, block_n] : blocks) {
    for (const auto& [q_len, kv_len] : std::vector<std::pair<int, int>>{
             {1, 1}, {1, 300}, {17, 17}, {130, 130}, {200, 77}, {77, 200}, {300, 300}}) {
      for (bool causal : {false, true}) {
        for (int64_t window : {int64_t{0}, int64_t{1}, int64_t{63}, int64_t{100}}) {
          check_blocks(block_m, block_n, q_len, kv_len, 4, causal, window);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shapes the kernel's launch relies on.

template <int D>
void check_traits() {
  using Traits = flash::FlashTraits<D>;
  static_assert(Traits::kBlockM == 16 * Traits::kMTiles * Traits::kWarps, "warps own whole m16 tiles");
  static_assert(Traits::kBlockN % 16 == 0 && Traits::kBlockN <= Traits::kThreads);
  static_assert(Traits::kRowStride % 8 == 0, "16-byte aligned rows for cp.async and ldmatrix");
  // Shared memory within what an A100 (sm_80, 163 KiB per block) and an H100 (227 KiB) grant.
  EXPECT_LE(Traits::kSmemBytes, 166912) << "D " << D;
}

TEST(FlashFragments, TraitsFitTheDevicesWeBuildFor) {
  check_traits<64>();
  check_traits<80>();
  check_traits<96>();
  check_traits<128>();
  check_traits<256>();
}

}  // namespace
