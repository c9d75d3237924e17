// What the native-model C++ tests share: token ids from a list, a relative error over logits, and
// the cache check every decoding family must pass — feeding a sequence through forward_cached a
// few tokens at a time gives the logits of one full forward over it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "models/model.h"

namespace hfport_test {

inline hfport::Tensor ids_tensor(int64_t batch, const std::vector<int64_t>& values) {
  const auto seq = static_cast<int64_t>(values.size()) / batch;
  hfport::Tensor t = hfport::Tensor::empty(hfport::DType::I64, {batch, seq});
  std::copy(values.begin(), values.end(), t.data_as<int64_t>());
  return t;
}

// The largest |a - b| over F32 logits, relative to the largest |b|.
inline float relative_max_error(const hfport::Tensor& a, const hfport::Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float worst = 0.0f, scale = 0.0f;
  for (int64_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::abs(a.data_as<float>()[i] - b.data_as<float>()[i]));
    scale = std::max(scale, std::abs(b.data_as<float>()[i]));
  }
  return worst / scale;
}

// Runs `batch` rows of `seq` tokens through a cache made with capacity 2 (so a growing cache must
// keep what it holds) in the chunks `steps` ([begin, end) column ranges covering 0..seq in order)
// and compares each chunk's logits with the full forward's.
inline void expect_cache_matches_full_forward(hfport::models::Model& model, int64_t batch,
                                              int64_t seq, int64_t vocab,
                                              const std::vector<std::pair<int64_t, int64_t>>& steps) {
  std::vector<int64_t> values;
  for (int64_t i = 0; i < batch * seq; ++i) values.push_back((7 * i + 3) % vocab);
  const hfport::Tensor ids = ids_tensor(batch, values);
  const hfport::Tensor full = model.forward(ids, hfport::Tensor(), false).logits;
  ASSERT_EQ(full.shape(), (hfport::Shape{batch, seq, vocab}));
  auto cache = model.new_cache(batch, 2);
  for (const auto& [begin, end] : steps) {
    ASSERT_EQ(cache->length(), begin);
    const hfport::Tensor step = model.forward_cached(ids.slice(1, begin, end).contiguous(), *cache);
    const hfport::Tensor expected = full.slice(1, begin, end).contiguous();
    EXPECT_LT(relative_max_error(step, expected), 1e-5f) << "tokens " << begin << ".." << end;
  }
  EXPECT_EQ(cache->length(), seq);
}

}  // namespace hfport_test
