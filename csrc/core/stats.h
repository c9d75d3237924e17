// Per-tensor statistics for `hfport inspect --stats` and the load report: element count, mean,
// standard deviation (unbiased, as torch.std), min and max over the finite elements, and counts of
// NaN and +-Inf. Accumulated in float64 with Chan's pairwise merge of (count, mean, M2), so the
// result does not depend on how the work was split across threads.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace hfport {

struct TensorStats {
  int64_t numel = 0;
  int64_t finite = 0;     // elements that entered mean/std/min/max
  int64_t nan_count = 0;
  int64_t inf_count = 0;
  double mean = 0.0;      // NaN when no element is finite
  double std = 0.0;       // NaN when fewer than two elements are finite
  double min = 0.0;
  double max = 0.0;
};

TensorStats tensor_stats(const Tensor& tensor);

// Statistics for many tensors at once, split into chunks across default_thread_count() threads.
// `progress(done)` is called on the calling thread only, each time more tensors are finished,
// so a caller may take a lock (Python's GIL) inside it.
std::vector<TensorStats> tensor_stats_many(const std::vector<Tensor>& tensors,
                                           const std::function<void(size_t done)>& progress = {});

}  // namespace hfport
