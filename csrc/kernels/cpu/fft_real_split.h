// The real FFT of an even size n through a complex FFT of n / 2 (fft_complex.h): the even samples
// as real parts and the odd ones as imaginary parts make z[t] = x[2t] + i x[2t+1], whose spectrum
// Z splits into the spectra of the two halves,
//
//   E[k] = (Z[k] + conj(Z[n/2 - k])) / 2,  O[k] = (Z[k] - conj(Z[n/2 - k])) / 2i,
//   X[k] = E[k] + exp(-2 pi i k / n) O[k],  X[n/2 - k] = conj(E[k] - exp(-2 pi i k / n) O[k]),
//
// one pass over k = 0 .. n/4, in place in the output (Z is written into its first n/2 values).
// Output: X[k] = sum_t x[t] exp(-2 pi i k t / n), k = 0 .. n/2, no normalisation. The engine of
// RealFftPlan (float) and RealFftPlanF64 (double), which validate the size for their callers.
// One plan per thread: forward writes into the plan's scratch.
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

#include "kernels/cpu/fft_complex.h"

namespace hfport {

template <class T>
class RealFftSplit {
 public:
  explicit RealFftSplit(int64_t size);  // size even, >= 2 (the callers check)

  // in: `size` samples; out: size / 2 + 1 values. The two must not overlap.
  void forward(const T* in, std::complex<T>* out);

 private:
  int64_t size_;
  ComplexFftPlan<T> half_;
  std::vector<std::complex<T>> twiddles_;  // exp(-2 pi i k / size), k = 0 .. size / 4
};

extern template class RealFftSplit<float>;
extern template class RealFftSplit<double>;

}  // namespace hfport
