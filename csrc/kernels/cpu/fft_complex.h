// hfport's own complex FFT: the engine under the audio front ends' real FFTs (fft_real.h,
// fft_real_f64.h). Forward only, no normalisation:
//
//   out[k] = sum_{t < size} in[t] exp(-2 pi i k t / size),  k = 0 .. size - 1
//
// Algorithm: mixed-radix Stockham autosort, decimation in frequency. A stage of radix p on a
// sub-transform of length L (stride s, m = L / p) takes the p inputs j, j + m, .., j + (p-1) m of
// each of the s interleaved sequences, forms their p-point DFT, multiplies output u by
// exp(-2 pi i j u / L) and writes it to position p j + u of the next stage's interleaving: no
// bit-reversal pass, the output comes out in natural order. Stages ping-pong between `out` and one
// scratch buffer, so a call allocates nothing.
//
// Radices 4, 2, 3 and 5 have written-out butterflies (4 first: Whisper's 400 -> 200 = 4 2 5 5,
// 512 -> 256 = 4 4 4 4); any other prime factor goes through a generic odd-radix butterfly,
// O(p^2) per butterfly, so every size works (slowly if it has a large prime factor).
//
// Accuracy: every twiddle and butterfly constant is computed in long double and rounded once to T,
// so the error is the butterflies' own, O(eps log n) relative L2: measured about 2e-16 (float64)
// and 1.2e-7 (float32) against a long-double direct DFT; tests/cpp/test_fft.cpp bounds them at
// 1e-15 and 1e-6. Complex products are
// written out: std::complex's operator* handles inf/nan by calling __mulsc3, several times slower.
//
// T is float or double (explicit instantiations in fft_complex.cpp). One plan per thread: forward
// writes into the plan's scratch.
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

namespace hfport {

template <class T>
class ComplexFftPlan {
 public:
  explicit ComplexFftPlan(int64_t size);  // ArgumentError unless 1 <= size < 2^30
  int64_t size() const { return size_; }

  // in: `size` values, not modified; out: `size` values. in and out must not overlap.
  void forward(const std::complex<T>* in, std::complex<T>* out);

 private:
  struct Stage {
    int radix;
    int64_t length;        // L, the sub-transform length this stage splits (size / stride)
    int64_t stride;        // s, the number of interleaved sub-transforms
    size_t twiddle_first;  // stage twiddles: twiddles_[first + j (radix - 1) + u - 1] = w_L^{ju}
    size_t constant_first;  // generic radix only: generic_roots_[first + k] = exp(-2 pi i k / p)
  };
  void run_stage(const Stage& st, const std::complex<T>* src, std::complex<T>* dst);

  int64_t size_;
  std::vector<Stage> stages_;
  std::vector<std::complex<T>> twiddles_;
  std::vector<std::complex<T>> generic_roots_;  // exp(-2 pi i r / p) for each generic stage
  std::vector<std::complex<T>> scratch_;        // size values, plus 2 p for a generic butterfly
};

extern template class ComplexFftPlan<float>;
extern template class ComplexFftPlan<double>;

}  // namespace hfport
