// The real FFT the audio front ends use (float32), behind one small class: hfport's own
// mixed-radix FFT (fft_real_split.h, fft_complex.h; docs/decisions.md, "hfport owns its FFT",
// says why not a library).
//
//   spectrum[k] = sum_{n < size} x[n] exp(-2 pi i k n / size),  k = 0 .. size / 2
//
// which is numpy's rfft and torch.fft.rfft (no normalisation). `size` must be even (a size / 2
// complex FFT does the work); any factorisation works, the radices 2, 3, 4 and 5 are the fast
// ones (Whisper's 400 = 2^4 5^2).
//
// A plan holds its twiddles and scratch, so one plan must not run on two threads at once; each
// thread of a parallel loop makes its own (a few kilobytes, made in microseconds).
#pragma once

#include <complex>
#include <cstdint>
#include <memory>

namespace hfport {

class RealFftPlan {
 public:
  explicit RealFftPlan(int64_t size);  // ArgumentError unless size is even and >= 2
  ~RealFftPlan();
  RealFftPlan(const RealFftPlan&) = delete;
  RealFftPlan& operator=(const RealFftPlan&) = delete;

  int64_t size() const { return size_; }
  int64_t bins() const { return size_ / 2 + 1; }

  // in: `size` samples; out: `bins` complex values. in is not modified; the two must not overlap.
  void forward(const float* in, std::complex<float>* out) const;

 private:
  int64_t size_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hfport
