// The chunked selective scan's combine logic (kernels/cuda/selective_scan_combine.h) on the host:
// one block of the CUDA kernel emulated thread by thread and shuffle round by shuffle round, with
// the header's functions and index math, against the recurrence in float64. Runs everywhere (no
// GPU, no CUDA build needed); it checks the order in which the kernel combines steps, lanes, warps
// and chunks, including a length that is not a multiple of the chunk and several chunks carrying
// the state. A variant with the warp round's composition reversed must fail it.
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_data.h"
#include "kernels/cuda/selective_scan_combine.h"

namespace {

using hfport::cuda::ScanPair;
using hfport::cuda::kScanWarpSize;

// One channel of the scan: dt (after bias and softplus), u, D, and per state A, B and C over time.
struct Channel {
  int64_t seqlen = 0, dstate = 0;
  std::vector<float> dt, u;  // [L]
  float d_skip = 0.0f;
  std::vector<float> a;      // [N]
  std::vector<float> b, c;   // [N][L]
};

struct ScanOutput {
  std::vector<double> y;     // [L]
  std::vector<double> last;  // [N]
};

Channel random_channel(int64_t seqlen, int64_t dstate) {
  std::normal_distribution<double> normal(0.0, 1.0);
  auto& rng = hfport_test::kernel_rng();
  Channel ch;
  ch.seqlen = seqlen;
  ch.dstate = dstate;
  for (int64_t t = 0; t < seqlen; ++t) {
    ch.dt.push_back(static_cast<float>(std::log1p(std::exp(0.5 * normal(rng) - 0.5))));
    ch.u.push_back(static_cast<float>(normal(rng)));
  }
  ch.d_skip = static_cast<float>(normal(rng));
  for (int64_t n = 0; n < dstate; ++n) {
    ch.a.push_back(static_cast<float>(-std::exp(0.5 * normal(rng))));
  }
  for (int64_t i = 0; i < dstate * seqlen; ++i) {
    ch.b.push_back(static_cast<float>(normal(rng)));
    ch.c.push_back(static_cast<float>(normal(rng)));
  }
  return ch;
}

// h_t = exp(dt_t A_n) h_{t-1} + dt_t B_t u_t, y_t = sum_n C_t h_t + D u_t, in float64.
ScanOutput reference(const Channel& ch) {
  ScanOutput out{std::vector<double>(ch.seqlen), std::vector<double>(ch.dstate, 0.0)};
  for (int64_t t = 0; t < ch.seqlen; ++t) {
    double y = static_cast<double>(ch.d_skip) * ch.u[t];
    for (int64_t n = 0; n < ch.dstate; ++n) {
      const double dt = ch.dt[t];
      double& h = out.last[n];
      h = std::exp(dt * ch.a[n]) * h + dt * ch.b[n * ch.seqlen + t] * ch.u[t];
      y += static_cast<double>(ch.c[n * ch.seqlen + t]) * h;
    }
    out.y[t] = y;
  }
  return out;
}

using WarpRound = ScanPair (*)(ScanPair own, ScanPair below, int lane, int offset);

// One thread's registers in the kernel.
template <int kItems>
struct ThreadRegisters {
  int count = 0;      // valid steps
  int64_t first = 0;  // its first step in the sequence
  float dt[kItems], du[kItems], y[kItems];  // per chunk
  float a[kItems], bu[kItems], cn[kItems];  // per chunk and state
};

// The kernel's block for one channel, as selective_scan.cu runs it, thread by thread. `round` is
// the warp scan's round (the kernel's, or a broken one).
template <typename Tiling>
ScanOutput emulate_block(const Channel& ch, WarpRound round) {
  constexpr int kThreads = Tiling::kThreads;
  constexpr int kItems = Tiling::kItems;
  ScanOutput out{std::vector<double>(ch.seqlen), {}};
  std::vector<float> carry[2] = {std::vector<float>(ch.dstate, 0.0f),
                                 std::vector<float>(ch.dstate, 0.0f)};
  std::vector<ThreadRegisters<kItems>> threads(kThreads);
  const int64_t chunks = Tiling::chunk_count(ch.seqlen);
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t chunk_first = k * Tiling::kChunk;
    const int valid = Tiling::valid_steps(ch.seqlen, chunk_first);
    const int read = static_cast<int>(k & 1);
    for (int t = 0; t < kThreads; ++t) {
      ThreadRegisters<kItems>& r = threads[t];
      r.count = Tiling::thread_steps(valid, t);
      r.first = chunk_first + Tiling::first_step(t);
      for (int i = 0; i < kItems; ++i) {
        const float u = i < r.count ? ch.u[r.first + i] : 0.0f;
        r.dt[i] = i < r.count ? ch.dt[r.first + i] : 0.0f;
        r.y[i] = ch.d_skip * u;
        r.du[i] = u * r.dt[i];
      }
    }
    for (int64_t n = 0; n < ch.dstate; ++n) {
      const float a_log2e = ch.a[n] * hfport::cuda::kScanLog2e;
      std::vector<ScanPair> inclusive(kThreads, hfport::cuda::scan_identity());
      std::vector<ScanPair> exclusive(kThreads);
      std::vector<ScanPair> warp_totals(Tiling::kWarps);
      for (int t = 0; t < kThreads; ++t) {
        ThreadRegisters<kItems>& r = threads[t];
        if (r.count == 0) continue;
        for (int i = 0; i < kItems; ++i) {
          const int64_t at = n * ch.seqlen + r.first + i;
          r.bu[i] = i < r.count ? ch.b[at] : 0.0f;
          r.cn[i] = i < r.count ? ch.c[at] : 0.0f;
          r.a[i] = hfport::cuda::scan_decay(r.dt[i], a_log2e);
          r.bu[i] *= r.du[i];
        }
        inclusive[t] = hfport::cuda::thread_aggregate<kItems>(r.a, r.bu);
      }
      // The shuffle rounds: every lane reads what the lane below held before the round;
      // __shfl_up_sync hands a lane below `offset` its own value.
      for (int w = 0; w < Tiling::kWarps; ++w) {
        ScanPair* lanes = inclusive.data() + w * kScanWarpSize;
        for (int offset = 1; offset < kScanWarpSize; offset *= 2) {
          const std::vector<ScanPair> before(lanes, lanes + kScanWarpSize);
          for (int lane = 0; lane < kScanWarpSize; ++lane) {
            const ScanPair below = before[lane >= offset ? lane - offset : lane];
            lanes[lane] = round(before[lane], below, lane, offset);
          }
        }
        for (int lane = 0; lane < kScanWarpSize; ++lane) {
          exclusive[w * kScanWarpSize + lane] =
              hfport::cuda::lane_exclusive(lanes[lane >= 1 ? lane - 1 : lane], lane);
        }
        warp_totals[w] = lanes[kScanWarpSize - 1];
      }
      for (int t = 0; t < kThreads; ++t) {
        ThreadRegisters<kItems>& r = threads[t];
        if (r.count == 0) continue;
        const float h0 = hfport::cuda::chunk_start_state(carry[read][n], warp_totals.data(),
                                                         t / kScanWarpSize, exclusive[t]);
        const float h = hfport::cuda::scan_thread_items<kItems>(h0, r.a, r.bu, r.cn, r.y);
        if (t == Tiling::carry_thread(valid)) carry[read ^ 1][n] = h;
      }
    }
    for (const ThreadRegisters<kItems>& r : threads) {
      for (int i = 0; i < r.count; ++i) out.y[r.first + i] = r.y[i];
    }
  }
  const std::vector<float>& last = carry[chunks & 1];
  out.last.assign(last.begin(), last.end());
  return out;
}

double relative_l2(const std::vector<double>& got, const std::vector<double>& want) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

ScanPair reversed_round(ScanPair own, ScanPair below, int lane, int offset) {
  return lane >= offset ? hfport::cuda::scan_compose(own, below) : own;
}

template <typename Tiling>
void check_lengths(std::initializer_list<int64_t> lengths) {
  for (int64_t seqlen : lengths) {
    for (int64_t dstate : {int64_t{1}, int64_t{3}, int64_t{16}}) {
      SCOPED_TRACE("block " + std::to_string(Tiling::kThreads) + " x " +
                   std::to_string(Tiling::kItems) + ", L " + std::to_string(seqlen) + ", N " +
                   std::to_string(dstate));
      const Channel ch = random_channel(seqlen, dstate);
      const ScanOutput want = reference(ch);
      const ScanOutput got = emulate_block<Tiling>(ch, hfport::cuda::warp_scan_round);
      EXPECT_LT(relative_l2(got.y, want.y), 1e-5);
      EXPECT_LT(relative_l2(got.last, want.last), 1e-5);
    }
  }
}

TEST(ScanCombine, PairCompositionIsTheRecurrenceInOrder) {
  const ScanPair p{0.75f, -1.5f}, q{0.5f, 2.0f}, r{0.25f, 0.125f};
  const ScanPair id = hfport::cuda::scan_identity();
  // The identity is neutral on both sides, exactly.
  EXPECT_EQ(hfport::cuda::scan_compose(id, p).a, p.a);
  EXPECT_EQ(hfport::cuda::scan_compose(id, p).b, p.b);
  EXPECT_EQ(hfport::cuda::scan_compose(p, id).a, p.a);
  EXPECT_EQ(hfport::cuda::scan_compose(p, id).b, p.b);
  // p then q is q(p(h)): (0.5 * 0.75, 0.5 * -1.5 + 2) = (0.375, 1.25); all exact in binary.
  const ScanPair pq = hfport::cuda::scan_compose(p, q);
  EXPECT_EQ(pq.a, 0.375f);
  EXPECT_EQ(pq.b, 1.25f);
  EXPECT_EQ(hfport::cuda::scan_apply(pq, 3.0f),
            hfport::cuda::scan_apply(q, hfport::cuda::scan_apply(p, 3.0f)));
  // q then p differs: the order is the recurrence's.
  EXPECT_NE(hfport::cuda::scan_compose(q, p).b, pq.b);
  // Associative (exactly here, with these binary fractions).
  const ScanPair left = hfport::cuda::scan_compose(pq, r);
  const ScanPair right = hfport::cuda::scan_compose(p, hfport::cuda::scan_compose(q, r));
  EXPECT_EQ(left.a, right.a);
  EXPECT_EQ(left.b, right.b);
  // A lane below the round's offset keeps its own pair; the first lane's prefix is the identity.
  EXPECT_EQ(hfport::cuda::warp_scan_round(q, p, 3, 4).b, q.b);
  EXPECT_EQ(hfport::cuda::warp_scan_round(q, p, 4, 4).b, pq.b);
  EXPECT_EQ(hfport::cuda::lane_exclusive(p, 0).a, 1.0f);
  EXPECT_EQ(hfport::cuda::lane_exclusive(p, 0).b, 0.0f);
  EXPECT_EQ(hfport::cuda::lane_exclusive(p, 5).b, p.b);
}

template <typename Tiling>
void check_tiling(std::initializer_list<int64_t> lengths) {
  SCOPED_TRACE("block " + std::to_string(Tiling::kThreads) + " x " +
               std::to_string(Tiling::kItems));
  // Every step of a chunk belongs to exactly one thread, and the carry thread holds the last one.
  for (int valid = 1; valid <= Tiling::kChunk; ++valid) {
    int covered = 0;
    for (int t = 0; t < Tiling::kThreads; ++t) {
      const int steps = Tiling::thread_steps(valid, t);
      ASSERT_GE(steps, 0);
      ASSERT_LE(steps, Tiling::kItems);
      if (steps > 0) {
        ASSERT_EQ(Tiling::first_step(t), covered) << "valid " << valid;
      }
      covered += steps;
    }
    ASSERT_EQ(covered, valid);
    const int owner = Tiling::carry_thread(valid);
    ASSERT_LE(Tiling::first_step(owner), valid - 1);
    ASSERT_EQ(Tiling::first_step(owner) + Tiling::thread_steps(valid, owner), valid);
  }
  // The chunks of a sequence cover it: full chunks, then the remainder.
  for (int64_t seqlen : lengths) {
    const int64_t chunks = Tiling::chunk_count(seqlen);
    int64_t covered = 0;
    for (int64_t k = 0; k < chunks; ++k) covered += Tiling::valid_steps(seqlen, k * Tiling::kChunk);
    EXPECT_EQ(covered, seqlen) << "L " << seqlen;
    EXPECT_EQ(Tiling::valid_steps(seqlen, (chunks - 1) * Tiling::kChunk),
              seqlen - (chunks - 1) * Tiling::kChunk);
  }
}

TEST(ScanCombine, TilingCoversEveryStepOnce) {
  check_tiling<hfport::cuda::ScanShort>({1, 255, 256, 257, 1000});
  check_tiling<hfport::cuda::ScanLong>({1, 2047, 2048, 2049, 5000});
}

TEST(ScanCombine, ShortBlockMatchesTheFloat64Recurrence) {
  // The kernel takes this shape for L <= 256 only; longer lengths still check its carry.
  check_lengths<hfport::cuda::ScanShort>({1, 2, 9, 33, 255, 256, 257, 3 * 256 + 5});
}

TEST(ScanCombine, LongBlockMatchesTheFloat64Recurrence) {
  // One partial chunk (a few lanes; part of a warp; several warps, the last partial), one full
  // chunk, a chunk plus one step, and three chunks with a partial last one.
  check_lengths<hfport::cuda::ScanLong>({17, 100, 1000, 2048, 2049, 2 * 2048 + 1000});
}

TEST(ScanCombine, AReversedWarpRoundFails) {
  // The check above must see a combine-order error: with the warp round composing the lane's own
  // pair before the lane below, the same comparison is far off.
  const Channel ch = random_channel(1000, 4);
  const ScanOutput want = reference(ch);
  const ScanOutput wrong = emulate_block<hfport::cuda::ScanLong>(ch, reversed_round);
  EXPECT_GT(relative_l2(wrong.y, want.y), 1e-2);
  const ScanOutput right = emulate_block<hfport::cuda::ScanLong>(ch, hfport::cuda::warp_scan_round);
  EXPECT_LT(relative_l2(right.y, want.y), 1e-5);
}

}  // namespace
