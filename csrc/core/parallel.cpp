#include "core/parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace hfport {

namespace {

// One loop handed to the pool: chunk c covers [c * chunk, min(n, (c + 1) * chunk)).
struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t chunk = 0;
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};      // the next chunk to take
  std::atomic<int64_t> finished{0};  // chunks done
  std::mutex failure_mutex;
  std::exception_ptr failure;

  // Takes chunks until none is left; true when this call finished the last one.
  bool run_chunks() {
    bool finished_last = false;
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      const int64_t begin = c * chunk;
      try {
        (*fn)(begin, std::min(n, begin + chunk));
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
      finished_last = finished.fetch_add(1) + 1 == chunks;
    }
    return finished_last;
  }
};

thread_local bool t_inside_pool = false;  // set in workers, and in a caller while its job runs

class ThreadPool {
 public:
  // Runs `job` on the caller and up to `helpers` workers; false (nothing run) when another loop
  // holds the pool.
  bool try_run(Job& job, int helpers) {
    std::unique_lock<std::mutex> running(run_mutex_, std::try_to_lock);
    if (!running.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(workers_.size()) < helpers) {
        workers_.emplace_back([this] { work(); });
      }
      job_ = &job;
      wanted_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    t_inside_pool = true;
    const bool caller_finished_last = job.run_chunks();
    t_inside_pool = false;
    std::unique_lock<std::mutex> lock(mutex_);
    if (caller_finished_last) {
      finished_ = true;
    } else {
      done_.wait(lock, [&] { return finished_; });
    }
    // No worker may still hold `job` when it goes out of scope: wait for the ones that took it.
    done_.wait(lock, [&] { return busy_ == 0; });
    job_ = nullptr;
    finished_ = false;
    return true;
  }

 private:
  void work() {
    t_inside_pool = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen && job_ != nullptr; });
      seen = generation_;
      if (wanted_ == 0) continue;  // enough helpers took this job
      --wanted_;
      ++busy_;
      Job* job = job_;
      lock.unlock();
      const bool finished_last = job->run_chunks();
      lock.lock();
      --busy_;
      if (finished_last) finished_ = true;
      if (finished_last || busy_ == 0) done_.notify_all();
    }
  }

  std::mutex run_mutex_;  // held by the one caller whose loop runs on the pool
  std::mutex mutex_;      // guards everything below
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  int wanted_ = 0;  // helpers the current job may still take
  int busy_ = 0;    // workers inside the current job
  bool finished_ = false;
};

// Created on first use and never destroyed (its workers sleep until the process exits): they must
// outlive every static that might call parallel_for from its destructor. In a child after fork() the parent's pool is abandoned (its
// threads are not there, its mutexes may be held) and a new one is made.
std::atomic<ThreadPool*> g_pool{nullptr};
std::once_flag g_atfork_once;

ThreadPool& pool() {
  std::call_once(g_atfork_once, [] {
    pthread_atfork(nullptr, nullptr, [] { g_pool.store(nullptr); });
  });
  ThreadPool* current = g_pool.load();
  if (current == nullptr) {
    static std::mutex create_mutex;  // a fresh mutex object is not needed: only the child runs
    std::lock_guard<std::mutex> lock(create_mutex);
    current = g_pool.load();
    if (current == nullptr) {
      current = new ThreadPool();
      g_pool.store(current);
    }
  }
  return *current;
}

}  // namespace

int default_thread_count() {
  if (const char* env = std::getenv("HFPORT_NUM_THREADS")) {
    const int requested = std::atoi(env);
    if (requested > 0) return requested;
  }
  // Read once: glibc answers it by reading /sys/devices/system/cpu/online, a file open and read
  // that would be most of a small op's cost (3 system calls per call, found with strace).
  static const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return hardware;
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks_of_grain = (n + grain - 1) / grain;
  const int64_t threads =
      chunks_of_grain <= 1 ? 1 : std::min<int64_t>(default_thread_count(), chunks_of_grain);
  if (threads <= 1 || t_inside_pool) {
    fn(0, n);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.chunk = (n + threads - 1) / threads;
  job.chunks = (n + job.chunk - 1) / job.chunk;
  if (!pool().try_run(job, static_cast<int>(job.chunks - 1))) {
    fn(0, n);  // another thread's loop has the pool
    return;
  }
  if (job.failure) std::rethrow_exception(job.failure);
}

}  // namespace hfport
