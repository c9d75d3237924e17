// The next-token choice of generate; see token_choice.h for the processors and the draw.
#include "models/token_choice.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace hfport::models {

namespace {

constexpr double kMinusInfinity = -std::numeric_limits<double>::infinity();

// A setting as the user wrote it: 0.95, not 0.950000.
std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// TopKLogitsWarper: the k-th largest score is the threshold; scores below it are removed.
void keep_top_k(std::span<double> scores, int64_t top_k) {
  const auto vocab = static_cast<int64_t>(scores.size());
  const int64_t k = std::min(std::max<int64_t>(top_k, 1), vocab);
  if (k == vocab) return;
  std::vector<double> sorted(scores.begin(), scores.end());
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<>());
  const double threshold = sorted[static_cast<size_t>(k - 1)];
  for (double& score : scores) {
    if (score < threshold) score = kMinusInfinity;
  }
}

// TopPLogitsWarper: ascending order, cumulative softmax; what stays at or under 1 - top_p goes,
// except the largest score.
void keep_top_p(std::span<double> scores, double top_p) {
  std::vector<size_t> ascending(scores.size());
  std::iota(ascending.begin(), ascending.end(), size_t{0});
  std::stable_sort(ascending.begin(), ascending.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  const double largest = scores[ascending.back()];
  if (largest == kMinusInfinity) return;  // nothing is left to filter
  double total = 0.0;
  for (double score : scores) total += std::exp(score - largest);
  const double cut = 1.0 - top_p;
  double cumulative = 0.0;
  for (size_t i = 0; i + 1 < ascending.size(); ++i) {
    double& score = scores[ascending[i]];
    cumulative += std::exp(score - largest) / total;
    if (cumulative > cut) break;
    score = kMinusInfinity;
  }
}

}  // namespace

void check_sampling_settings(const SamplingSettings& settings) {
  if (!(settings.temperature > 0.0) || !std::isfinite(settings.temperature)) {
    throw ArgumentError("generate: temperature must be a finite number > 0, got " +
                        number_text(settings.temperature) +
                        (settings.temperature == 0.0 ? " (for greedy decoding use do_sample=False)"
                                                     : ""));
  }
  if (settings.top_k < 0) {
    throw ArgumentError("generate: top_k must be >= 0 (0 turns top-k filtering off), got " +
                        std::to_string(settings.top_k));
  }
  if (!(settings.top_p > 0.0 && settings.top_p <= 1.0)) {
    throw ArgumentError("generate: top_p must be in (0, 1] (1 turns top-p filtering off), got " +
                        number_text(settings.top_p));
  }
}

void suppress_tokens(std::span<double> scores, std::span<const int64_t> eos_token_ids) {
  for (int64_t id : eos_token_ids) {
    if (id >= 0 && id < static_cast<int64_t>(scores.size())) {
      scores[static_cast<size_t>(id)] = kMinusInfinity;
    }
  }
}

void warp_scores(std::span<double> scores, const SamplingSettings& settings) {
  if (scores.empty()) return;
  if (settings.temperature != 1.0) {
    for (double& score : scores) score /= settings.temperature;
  }
  if (settings.top_k != 0) keep_top_k(scores, settings.top_k);
  if (settings.top_p < 1.0) keep_top_p(scores, settings.top_p);
}

std::vector<double> softmax_probabilities(std::span<const double> scores, int64_t row) {
  double largest = kMinusInfinity;
  for (double score : scores) {
    if (std::isnan(score)) {
      throw ArgumentError("generate: the scores of row " + std::to_string(row) +
                          " hold NaN; no token can be sampled from them");
    }
    largest = std::max(largest, score);
  }
  if (largest == kMinusInfinity) {
    throw ArgumentError("generate: every token of row " + std::to_string(row) +
                        " was filtered out (all scores -inf); no token can be sampled");
  }
  std::vector<double> probabilities(scores.size());
  double total = 0.0;
  for (size_t i = 0; i < scores.size(); ++i) {
    probabilities[i] = std::exp(scores[i] - largest);
    total += probabilities[i];
  }
  for (double& p : probabilities) p /= total;
  return probabilities;
}

int64_t first_argmax(std::span<const double> scores) {
  size_t best = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) return static_cast<int64_t>(i);
    if (scores[i] > scores[best]) best = i;
  }
  return static_cast<int64_t>(best);
}

Tensor sampling_probabilities(const Tensor& logits, const SamplingSettings& settings) {
  check_sampling_settings(settings);
  if (logits.ndim() != 2 || logits.shape()[1] < 1) {
    throw ArgumentError("sampling_probabilities: logits must be [rows, vocab] with vocab >= 1, "
                        "got " + shape_to_string(logits.shape()));
  }
  if (logits.dtype() != DType::F32 && logits.dtype() != DType::F16 &&
      logits.dtype() != DType::BF16 && logits.dtype() != DType::F64) {
    throw ArgumentError("sampling_probabilities: logits must be F32, F16, BF16 or F64, got " +
                        std::string(dtype_name(logits.dtype())));
  }
  if (logits.device().type != DeviceType::CPU) {
    throw DeviceError("sampling_probabilities: logits must be on the host, got " +
                      device_name(logits.device()));
  }
  const Tensor c = logits.contiguous();
  const int64_t rows = c.shape()[0], vocab = c.shape()[1];
  Tensor out = Tensor::empty(DType::F64, {rows, vocab});
  std::vector<double> scores(static_cast<size_t>(vocab));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t v = 0; v < vocab; ++v) {
      scores[static_cast<size_t>(v)] =
          load_as_f64(c.data(), c.dtype(), static_cast<size_t>(r * vocab + v));
    }
    warp_scores(scores, settings);
    const std::vector<double> p = softmax_probabilities(scores, r);
    std::copy(p.begin(), p.end(), out.data_as<double>() + r * vocab);
  }
  return out;
}

TokenSampler::TokenSampler(std::optional<uint64_t> seed)
    : engine_(seed ? *seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {}

int64_t TokenSampler::draw(std::span<const double> probabilities) {
  const double u = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  double cumulative = 0.0;
  int64_t last_possible = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    if (probabilities[i] <= 0.0) continue;
    cumulative += probabilities[i];
    last_possible = static_cast<int64_t>(i);
    if (u < cumulative) return last_possible;
  }
  // The probabilities summed to a little under u by rounding: the last token that can occur.
  return last_possible;
}

}  // namespace hfport::models
