// A power spectrum projected onto a mel filter bank, one frame at a time, reading only each
// filter's band.
//
//   mel[m] = sum_k filters[k, m] power[k],  k < bins, in increasing k
//
// A mel filter is a triangle: it is zero outside a band of a few bins to a few dozen (every bin
// lies in at most two filters), so of the dense [bins, mels] product (33K multiply-adds a frame for
// CLAP's 513 x 64, 21K for fbank's 257 x 80) well under a tenth is not a multiplication by zero.
// Each filter keeps its weights from its first to its last nonzero bin; the sum runs over that
// band in the same order as the dense loop, and the terms it skips are exact zeros (0 * a finite
// power), so the result is the dense loop's to the bit. Header-only, so that the arithmetic is
// compiled with the includer's floating-point flags (fbank's forbid fused multiply-adds).
//
// filters: F64 [bins, mels], row-major, copied at construction (the bank may be freed after).
// apply: power [bins] -> mel [mels]; the two must not overlap.
#pragma once

#include <cstdint>
#include <vector>

namespace hfport {

class MelProjection {
 public:
  MelProjection(const double* filters, int64_t bins, int64_t mels)
      : mels_(mels), first_(static_cast<size_t>(mels)), offset_(static_cast<size_t>(mels) + 1, 0) {
    for (int64_t m = 0; m < mels; ++m) {
      int64_t first = 0, end = 0;
      for (int64_t k = 0; k < bins; ++k) {
        if (filters[k * mels + m] != 0.0) {
          if (end == 0) first = k;
          end = k + 1;
        }
      }
      first_[static_cast<size_t>(m)] = first;
      for (int64_t k = first; k < end; ++k) weights_.push_back(filters[k * mels + m]);
      offset_[static_cast<size_t>(m) + 1] = static_cast<int64_t>(weights_.size());
    }
  }

  int64_t mels() const { return mels_; }

  void apply(const double* power, double* mel) const {
    for (int64_t m = 0; m < mels_; ++m) {
      const size_t i = static_cast<size_t>(m);
      const double* w = weights_.data() + offset_[i];
      const double* p = power + first_[i];
      const int64_t count = offset_[i + 1] - offset_[i];
      double sum = 0.0;
      for (int64_t j = 0; j < count; ++j) sum += w[j] * p[j];
      mel[m] = sum;
    }
  }

 private:
  int64_t mels_;
  std::vector<int64_t> first_;   // each filter's first nonzero bin
  std::vector<int64_t> offset_;  // where each filter's weights start in weights_ (mels + 1)
  std::vector<double> weights_;  // the filters' bands, one after another
};

}  // namespace hfport
