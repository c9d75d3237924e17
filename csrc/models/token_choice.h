// Choosing the next token from one row of a decoding step's scores, as transformers' generate does
// (GenerationMixin._sample), after the logits processors hfport mirrors. transformers 5.x builds
// them in this order (_get_logits_processor), and so does generate.cpp:
//   MinNewTokensLengthLogitsProcessor  every eos id -> -inf while fewer than min_new_tokens were
//                                      generated (greedy and sampling; suppress_eos below)
//   TemperatureLogitsWarper            scores / temperature                      (sampling only)
//   TopKLogitsWarper                   scores below the k-th largest -> -inf; a score equal to the
//                                      k-th is kept, so ties can keep more than k (top_k = 0: off)
//   TopPLogitsWarper                   sort ascending, softmax, cumulative sum; every entry whose
//                                      cumulative probability is <= 1 - top_p -> -inf, the largest
//                                      always kept: the smallest set of most probable tokens whose
//                                      probabilities add up to top_p or more
// then greedy takes the first maximum (torch.argmax), sampling draws from softmax(scores).
//
// Precision: scores are float64 on the host (the logits, F32/F16/BF16, widen exactly); transformers
// works in float32. The two agree on every token that is not a tie or sits within float32
// rounding of the top-p boundary.
//
// The draw: a 64-bit Mersenne Twister (std::mt19937_64, whose output sequence the C++ standard
// fixes) seeded with `seed`, one uniform u = (x >> 11) * 2^-53 in [0, 1) per row and step, and the
// first token whose cumulative probability exceeds u. The same seed gives the same tokens on every
// platform; it is not torch's generator, so they are never torch.multinomial's tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace hfport::models {

struct SamplingSettings {
  double temperature = 1.0;  // > 0; 1 leaves the scores as they are
  int64_t top_k = 50;        // >= 0; 0 turns top-k off
  double top_p = 1.0;        // in (0, 1]; 1 turns top-p off
};

// ArgumentError naming the setting, the rule and the value given.
void check_sampling_settings(const SamplingSettings& settings);

// Sets the scores of `eos_token_ids` to -inf (MinNewTokensLengthLogitsProcessor while it is
// active). Ids outside the row are ignored, as torch.isin over the vocabulary ignores them.
void suppress_tokens(std::span<double> scores, std::span<const int64_t> eos_token_ids);

// Temperature, then top-k, then top-p, in place: filtered scores become -inf.
void warp_scores(std::span<double> scores, const SamplingSettings& settings);

// softmax(scores) in float64. ArgumentError when no token is left (every score -inf) or a score is
// NaN: nothing can be drawn from such a row. `row` names it in the message.
std::vector<double> softmax_probabilities(std::span<const double> scores, int64_t row);

// The index of the first largest score (torch.argmax's choice; a NaN wins, as it does there).
int64_t first_argmax(std::span<const double> scores);

// Rows of `logits` [rows, vocab] (F32/F16/BF16 on the host) after warp_scores, as softmax
// probabilities [rows, vocab] F64: what sampling draws from. For tests against transformers'
// warpers applied to the same logits.
Tensor sampling_probabilities(const Tensor& logits, const SamplingSettings& settings);

class TokenSampler {
 public:
  // nullopt: a seed from std::random_device (a different stream every time).
  explicit TokenSampler(std::optional<uint64_t> seed);
  // One draw from `probabilities` (non-negative, summing to 1 up to rounding).
  int64_t draw(std::span<const double> probabilities);

 private:
  std::mt19937_64 engine_;
};

}  // namespace hfport::models
