// A float64 real FFT for the front ends whose reference computes its spectra in float64 and whose
// features then amplify the rounding (the filter banks of Wav2Vec2-BERT: per-bin normalisation
// divides by the bin's spread over the utterance, small for steady sounds). The same engine as
// RealFftPlan (fft_real_split.h) instantiated for double: about 1e-16 relative L2 from the exact
// DFT.
//
//   spectrum[k] = sum_{n < size} x[n] exp(-2 pi i k n / size),  k = 0 .. size / 2
//
// `size` must be even (a size / 2 complex FFT does the work). One plan per thread: forward writes
// into the plan's scratch.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>

namespace hfport {

class RealFftPlanF64 {
 public:
  explicit RealFftPlanF64(int64_t size);  // ArgumentError unless size is even and >= 2
  ~RealFftPlanF64();
  RealFftPlanF64(const RealFftPlanF64&) = delete;
  RealFftPlanF64& operator=(const RealFftPlanF64&) = delete;

  int64_t size() const { return size_; }
  int64_t bins() const { return size_ / 2 + 1; }

  // in: `size` samples; out: `bins` complex values.
  void forward(const double* in, std::complex<double>* out);

 private:
  int64_t size_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hfport
