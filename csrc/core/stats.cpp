#include "core/stats.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include "core/cast.h"
#include "core/error.h"
#include "core/parallel.h"

namespace hfport {

namespace {

constexpr int64_t kChunkElements = 1 << 20;  // one work item
constexpr int64_t kBlockElements = 2048;     // two passes over a block that sits in L1

// (count, mean, M2) of finite values plus extrema and non-finite counts.
struct Accumulator {
  int64_t count = 0;
  double mean = 0.0;
  double m2 = 0.0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  int64_t nan_count = 0;
  int64_t inf_count = 0;

  void merge(const Accumulator& other) {
    if (other.count > 0) {
      const double total = static_cast<double>(count + other.count);
      const double delta = other.mean - mean;
      mean += delta * static_cast<double>(other.count) / total;
      m2 += other.m2 + delta * delta * static_cast<double>(count) *
                           static_cast<double>(other.count) / total;
      count += other.count;
      min = std::min(min, other.min);
      max = std::max(max, other.max);
    }
    nan_count += other.nan_count;
    inf_count += other.inf_count;
  }
};

// Any block with a NaN or an Inf: element by element.
void accumulate_block_checked(const double* v, int64_t n, Accumulator& acc) {
  Accumulator block;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = v[i];
    if (std::isnan(x)) {
      ++block.nan_count;
    } else if (std::isinf(x)) {
      ++block.inf_count;
    } else {
      ++block.count;
      sum += x;
      block.min = std::min(block.min, x);
      block.max = std::max(block.max, x);
    }
  }
  if (block.count > 0) {
    block.mean = sum / static_cast<double>(block.count);
    for (int64_t i = 0; i < n; ++i) {
      if (std::isfinite(v[i])) block.m2 += (v[i] - block.mean) * (v[i] - block.mean);
    }
  }
  acc.merge(block);
}

// The common case, every element finite, without branches: kLanes independent partial sums,
// minima and maxima let the compiler keep them in vector registers. `probe` sums x - x, which is
// 0 for finite x and NaN for NaN or Inf, so one check at the end sends such a block to the
// element-by-element path.
void accumulate_block(const double* v, int64_t n, Accumulator& acc) {
  constexpr int64_t kLanes = 8;
  double sum[kLanes] = {}, probe[kLanes] = {}, low[kLanes], high[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) {
    low[l] = std::numeric_limits<double>::infinity();
    high[l] = -std::numeric_limits<double>::infinity();
  }
  const int64_t whole = n - n % kLanes;
  for (int64_t i = 0; i < whole; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const double x = v[i + l];
      sum[l] += x;
      probe[l] += x - x;
      low[l] = x < low[l] ? x : low[l];
      high[l] = x > high[l] ? x : high[l];
    }
  }
  for (int64_t i = whole; i < n; ++i) {
    sum[0] += v[i];
    probe[0] += v[i] - v[i];
    low[0] = std::min(low[0], v[i]);
    high[0] = std::max(high[0], v[i]);
  }
  double total = 0.0, check = 0.0;
  Accumulator block;
  for (int64_t l = 0; l < kLanes; ++l) {
    total += sum[l];
    check += probe[l];
    block.min = std::min(block.min, low[l]);
    block.max = std::max(block.max, high[l]);
  }
  if (std::isnan(check) || n == 0) {
    accumulate_block_checked(v, n, acc);
    return;
  }
  block.count = n;
  block.mean = total / static_cast<double>(n);
  double m2[kLanes] = {};
  for (int64_t i = 0; i < whole; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const double d = v[i + l] - block.mean;
      m2[l] += d * d;
    }
  }
  for (int64_t i = whole; i < n; ++i) m2[0] += (v[i] - block.mean) * (v[i] - block.mean);
  for (int64_t l = 0; l < kLanes; ++l) block.m2 += m2[l];
  acc.merge(block);
}

// Elements [begin, end) of a contiguous tensor.
Accumulator accumulate_range(const Tensor& t, int64_t begin, int64_t end) {
  Accumulator acc;
  double block[kBlockElements];
  const std::byte* base = t.data();
  const int64_t item = static_cast<int64_t>(dtype_size(t.dtype()));
  for (int64_t start = begin; start < end; start += kBlockElements) {
    const int64_t n = std::min(kBlockElements, end - start);
    cast_contiguous(base + start * item, t.dtype(), block, DType::F64, n);
    accumulate_block(block, n, acc);
  }
  return acc;
}

TensorStats finish(const Accumulator& acc, int64_t numel) {
  TensorStats s;
  s.numel = numel;
  s.finite = acc.count;
  s.nan_count = acc.nan_count;
  s.inf_count = acc.inf_count;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.mean = acc.count > 0 ? acc.mean : nan;
  s.std = acc.count > 1 ? std::sqrt(acc.m2 / static_cast<double>(acc.count - 1)) : nan;
  s.min = acc.count > 0 ? acc.min : nan;
  s.max = acc.count > 0 ? acc.max : nan;
  return s;
}

}  // namespace

TensorStats tensor_stats(const Tensor& tensor) { return tensor_stats_many({tensor}).front(); }

std::vector<TensorStats> tensor_stats_many(const std::vector<Tensor>& tensors,
                                           const std::function<void(size_t)>& progress) {
  std::vector<Tensor> inputs;
  inputs.reserve(tensors.size());
  for (const Tensor& t : tensors) {
    // A device pointer would be read as host memory below (contiguous() copies nothing when the
    // tensor already is contiguous), so refuse it here.
    if (t.device().type != DeviceType::CPU) {
      throw DeviceError("tensor statistics run on the host; a tensor is on CUDA");
    }
    inputs.push_back(t.contiguous());
  }

  struct Item {
    size_t tensor;
    int64_t begin, end;
  };
  std::vector<Item> items;
  std::vector<std::atomic<int64_t>> pending(inputs.size());
  for (size_t t = 0; t < inputs.size(); ++t) {
    const int64_t n = inputs[t].numel();
    int64_t chunks = 0;
    for (int64_t begin = 0; begin < n; begin += kChunkElements, ++chunks) {
      items.push_back({t, begin, std::min(n, begin + kChunkElements)});
    }
    pending[t] = chunks;
  }
  std::vector<Accumulator> partial(items.size());

  std::atomic<size_t> next_item{0};
  std::atomic<size_t> tensors_done{0};
  for (size_t t = 0; t < inputs.size(); ++t) {
    if (pending[t] == 0) ++tensors_done;  // empty tensors are done before we start
  }
  std::mutex mutex;
  std::condition_variable changed;
  std::exception_ptr failure;
  const int threads = std::max(1, std::min<int>(default_thread_count(), items.size()));
  std::atomic<int> workers_running{threads};
  auto work = [&] {
    try {
      for (size_t i; (i = next_item.fetch_add(1)) < items.size();) {
        const Item& item = items[i];
        partial[i] = accumulate_range(inputs[item.tensor], item.begin, item.end);
        if (pending[item.tensor].fetch_sub(1) == 1) {
          ++tensors_done;
          changed.notify_one();
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!failure) failure = std::current_exception();
    }
    --workers_running;
    changed.notify_one();
  };

  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back(work);
  // The calling thread reports progress while the workers run. If the callback throws (Python's
  // KeyboardInterrupt), the workers are told there is nothing left, joined, and the error rethrown.
  size_t reported = static_cast<size_t>(-1);
  std::exception_ptr progress_failure;
  while (workers_running.load() > 0) {
    const size_t done = tensors_done.load();
    if (progress && done != reported) {
      try {
        progress(done);
      } catch (...) {
        progress_failure = std::current_exception();
        next_item.store(items.size());
        break;
      }
      reported = done;
    }
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait_for(lock, std::chrono::milliseconds(50));
  }
  for (auto& w : workers) w.join();
  if (progress_failure) std::rethrow_exception(progress_failure);
  if (failure) std::rethrow_exception(failure);
  if (progress && reported != inputs.size()) progress(inputs.size());

  // Merge partials in item order: deterministic whatever the thread schedule was.
  std::vector<Accumulator> totals(inputs.size());
  for (size_t i = 0; i < items.size(); ++i) totals[items[i].tensor].merge(partial[i]);
  std::vector<TensorStats> out;
  out.reserve(inputs.size());
  for (size_t t = 0; t < inputs.size(); ++t) out.push_back(finish(totals[t], inputs[t].numel()));
  return out;
}

}  // namespace hfport
