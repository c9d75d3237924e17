// How the chunked selective scan (selective_scan.cu) combines the steps of a sequence across the
// threads of a block, written once for the kernel and for its host test
// (tests/cpp/test_scan_combine.cpp): under nvcc every function here is __host__ __device__; under a
// host compiler it is plain C++. Includes no CUDA header.
//
// One state n of one channel is the linear recurrence h_t = a_t h_{t-1} + b_t, with
// a_t = exp(dt_t A_n) and b_t = dt_t B_t u_t. A step is the pair (a, b), the map h -> a h + b, and
// two steps in order compose into one: (a1, b1) then (a2, b2) is (a2 a1, a2 b1 + b2). The
// composition is associative (not commutative), so a sequence can be cut into pieces, each piece
// reduced to one pair, and the pieces' pairs composed in order: a parallel scan.
//
// The kernel's block is kThreads threads of kItems steps each: a chunk of kChunk = kThreads x
// kItems consecutive time steps, thread t owning steps [t kItems, (t + 1) kItems) of the chunk.
// The sequence is walked chunk by chunk, and for each chunk and each state n:
//   1. each thread composes its steps into one pair (thread_aggregate);
//   2. each warp scans those pairs with shuffles: in the round of offset 1, 2, 4, 8, 16, lane l
//      >= offset composes the pair lane l - offset held before the round with its own
//      (warp_scan_round). Lane l then holds the composition of lanes 0..l, lane 31 the warp's
//      total (written to shared memory), and lane l - 1's pair is lane l's exclusive prefix
//      (lane_exclusive: the identity for lane 0);
//   3. the state before the thread's first step is the state carried in from the previous chunk,
//      advanced by the totals of warps 0..w-1 in order, then by the lane's exclusive prefix
//      (chunk_start_state);
//   4. the thread walks its own steps from that state, which gives h at every step, and adds
//      C_t h_t into its y (scan_thread_items);
//   5. the thread holding the chunk's last valid step writes its final h: the state carried into
//      the next chunk (ScanTiling::carry_thread).
// Steps past the end of the sequence are the identity (a = 1, b = 0): the kernel gives them
// dt = 0 and u = 0. A thread with no valid step contributes the identity and walks nothing.
//
// Every multiply-add is an explicit fmaf, so the host emulation rounds exactly as the device does
// (nvcc would contract a * h + b into an FMA on its own; a host compiler need not).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define HFPORT_SCAN_HD __host__ __device__
#define HFPORT_SCAN_FN __host__ __device__ __forceinline__
#define HFPORT_SCAN_UNROLL _Pragma("unroll")
#else
#define HFPORT_SCAN_HD
#define HFPORT_SCAN_FN inline
#define HFPORT_SCAN_UNROLL
#endif

namespace hfport::cuda {

inline constexpr int kScanWarpSize = 32;

// log2(e): the kernel computes exp(dt A) as exp2(dt (A log2 e)), folding log2 e into A once per
// state (mamba_ssm's trick: exp2 is the hardware's native exponential). The product dt (A log2 e)
// carries two f32 roundings, a relative error of about |dt A| 2^-23 in the decay, far inside the
// 1e-5 relative L2 budget for the decays that keep a state bounded.
inline constexpr float kScanLog2e = 1.4426950408889634f;

struct ScanPair {
  float a;  // decay: h -> a h + b
  float b;
};

HFPORT_SCAN_FN ScanPair scan_identity() { return ScanPair{1.0f, 0.0f}; }

// `earlier` then `later`: h -> later.a (earlier.a h + earlier.b) + later.b.
HFPORT_SCAN_FN ScanPair scan_compose(ScanPair earlier, ScanPair later) {
  return ScanPair{later.a * earlier.a, fmaf(later.a, earlier.b, later.b)};
}

HFPORT_SCAN_FN float scan_apply(ScanPair step, float h) { return fmaf(step.a, h, step.b); }

// The decay of one step: exp(dt A) with a_log2e = A log2 e.
HFPORT_SCAN_FN float scan_decay(float dt, float a_log2e) { return exp2f(dt * a_log2e); }

// One round of the warp's inclusive scan: `below` is the pair lane - offset held before the round
// (what __shfl_up_sync returns; lanes below `offset` get their own value back and keep it).
HFPORT_SCAN_FN ScanPair warp_scan_round(ScanPair own, ScanPair below, int lane, int offset) {
  return lane >= offset ? scan_compose(below, own) : own;
}

// The composition of the lanes before `lane`, from lane - 1's inclusive pair.
HFPORT_SCAN_FN ScanPair lane_exclusive(ScanPair inclusive_of_lane_below, int lane) {
  return lane == 0 ? scan_identity() : inclusive_of_lane_below;
}

// The state before the first step of lane `lane_prefix`'s thread in warp `warp`: `carry` (the
// state at the end of the previous chunk) advanced by warps 0..warp-1 in order, then by the lanes
// before it in its own warp.
HFPORT_SCAN_FN float chunk_start_state(float carry, const ScanPair* warp_totals, int warp,
                                       ScanPair lane_prefix) {
  float h = carry;
  for (int w = 0; w < warp; ++w) h = scan_apply(warp_totals[w], h);
  return scan_apply(lane_prefix, h);
}

// A thread's steps composed in order into one pair.
template <int kItems>
HFPORT_SCAN_FN ScanPair thread_aggregate(const float (&a)[kItems], const float (&b)[kItems]) {
  ScanPair total = scan_identity();
  HFPORT_SCAN_UNROLL
  for (int i = 0; i < kItems; ++i) total = scan_compose(total, ScanPair{a[i], b[i]});
  return total;
}

// Walks a thread's steps from state h: h_i = a_i h_{i-1} + b_i and y_i += c_i h_i. Returns the
// state after the last step.
template <int kItems>
HFPORT_SCAN_FN float scan_thread_items(float h, const float (&a)[kItems], const float (&b)[kItems],
                                       const float (&c)[kItems], float (&y)[kItems]) {
  HFPORT_SCAN_UNROLL
  for (int i = 0; i < kItems; ++i) {
    h = fmaf(a[i], h, b[i]);
    y[i] = fmaf(c[i], h, y[i]);
  }
  return h;
}

// Where each step of a sequence lives: chunk k covers steps [k kChunk, (k + 1) kChunk); thread t
// of the block owns steps first_step(t) .. first_step(t) + kItems - 1 of the chunk.
template <int kThreads_, int kItems_>
struct ScanTiling {
  static constexpr int kThreads = kThreads_;
  static constexpr int kItems = kItems_;
  static constexpr int kChunk = kThreads * kItems;
  static constexpr int kWarps = kThreads / kScanWarpSize;
  static_assert(kThreads % kScanWarpSize == 0, "a block is whole warps");

  HFPORT_SCAN_HD static constexpr int64_t chunk_count(int64_t seqlen) {
    return (seqlen + kChunk - 1) / kChunk;
  }
  // Valid steps in the chunk that starts at step chunk_first (1..kChunk for a chunk that exists).
  HFPORT_SCAN_HD static constexpr int valid_steps(int64_t seqlen, int64_t chunk_first) {
    return seqlen - chunk_first < kChunk ? static_cast<int>(seqlen - chunk_first) : kChunk;
  }
  HFPORT_SCAN_HD static constexpr int first_step(int thread) { return thread * kItems; }
  // How many of thread `thread`'s kItems steps are valid when the chunk has `valid` steps.
  HFPORT_SCAN_HD static constexpr int thread_steps(int valid, int thread) {
    const int left = valid - first_step(thread);
    return left <= 0 ? 0 : (left < kItems ? left : kItems);
  }
  // The thread that holds the chunk's last valid step, and so the state carried out of it.
  HFPORT_SCAN_HD static constexpr int carry_thread(int valid) { return (valid - 1) / kItems; }
};

// The kernel's two block shapes: one warp and one chunk for short sequences (L <= 256), and
// mamba_ssm's long-sequence shape, chunks of 2048 steps.
using ScanShort = ScanTiling<32, 8>;
using ScanLong = ScanTiling<128, 16>;

}  // namespace hfport::cuda
