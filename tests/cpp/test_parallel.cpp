// parallel_for on the process's thread pool: every index is visited exactly once, the chunks do not
// depend on which thread runs them, exceptions come back to the caller, nested and concurrent
// loops run (inline) instead of deadlocking, and a child process after fork() gets a working pool.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "scoped_threads.h"

namespace {

using hfport_test::ScopedThreads;

TEST(ParallelFor, EveryIndexOnceInTheSameChunksWhateverTheThreads) {
  for (const int threads : {1, 2, 3, 8}) {
    ScopedThreads count(threads);
    for (const auto& [n, grain] : {std::pair<int64_t, int64_t>{1, 1}, {7, 1}, {1000, 1},
                                   {1000, 300}, {1001, 7}, {65537, 64}}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex mutex;
      std::set<std::pair<int64_t, int64_t>> chunks;
      hfport::parallel_for(n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
        std::lock_guard<std::mutex> lock(mutex);
        chunks.insert({begin, end});
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << n << " " << i;
      // t = min(threads, ceil(n / grain)) equal ranges of ceil(n / t).
      const int64_t t = std::min<int64_t>(threads, (n + grain - 1) / grain);
      const int64_t chunk = (n + t - 1) / t;
      std::set<std::pair<int64_t, int64_t>> expected;
      for (int64_t begin = 0; begin < n; begin += chunk) expected.insert({begin, std::min(n, begin + chunk)});
      EXPECT_EQ(chunks, expected) << "threads " << threads << " n " << n << " grain " << grain;
    }
  }
}

TEST(ParallelFor, RunsOnSeveralThreadsAndReusesThem) {
  ScopedThreads count(4);
  thread_local int chunks_run = 0;  // per thread, over the whole process
  const std::thread::id caller = std::this_thread::get_id();
  std::mutex mutex;
  int most_chunks_on_a_worker = 0;
  for (int loop = 0; loop < 10; ++loop) {
    std::set<std::thread::id> ids;
    hfport::parallel_for(4, 1, [&](int64_t, int64_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // keep every chunk busy
      std::lock_guard<std::mutex> lock(mutex);
      ids.insert(std::this_thread::get_id());
      if (std::this_thread::get_id() != caller) {
        most_chunks_on_a_worker = std::max(most_chunks_on_a_worker, ++chunks_run);
      }
    });
    EXPECT_GE(ids.size(), 2u) << "loop " << loop << " ran on one thread";
  }
  // A thread made per call would run one chunk and end; the pool's workers run many.
  EXPECT_GE(most_chunks_on_a_worker, 3);
}

TEST(ParallelFor, AnExceptionReachesTheCallerAfterEveryChunk) {
  ScopedThreads count(4);
  std::atomic<int> chunks_run{0};
  EXPECT_THROW(hfport::parallel_for(400, 1, [&](int64_t begin, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ++chunks_run;
    if (begin == 100) throw std::runtime_error("chunk failed");
  }), std::runtime_error);
  EXPECT_EQ(chunks_run, 4);
  // The pool is usable afterwards.
  std::atomic<int64_t> sum{0};
  hfport::parallel_for(1000, 1, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum, 1000);
}

TEST(ParallelFor, NestedAndConcurrentLoopsFinish) {
  ScopedThreads count(3);
  std::atomic<int64_t> inner{0};
  hfport::parallel_for(6, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      hfport::parallel_for(100, 1, [&](int64_t ib, int64_t ie) { inner += ie - ib; });
    }
  });
  EXPECT_EQ(inner, 600);
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        hfport::parallel_for(64, 1, [&](int64_t b, int64_t e) { total += e - b; });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(total, 4 * 200 * 64);
}

TEST(ParallelFor, AChildAfterForkHasAWorkingPool) {
  ScopedThreads count(4);
  std::atomic<int64_t> warm{0};
  hfport::parallel_for(100, 1, [&](int64_t b, int64_t e) { warm += e - b; });  // parent's pool
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::atomic<int64_t> sum{0};
    hfport::parallel_for(1000, 1, [&](int64_t b, int64_t e) { sum += e - b; });
    ::_exit(sum == 1000 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
