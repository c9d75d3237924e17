// RealFftPlanF64 on KISS FFT's C++ template. See fft_real_f64.h.
#include "kernels/cpu/fft_real_f64.h"

#include <string>

#include <kissfft/kissfft.hh>

#include "core/error.h"

namespace hfport {

struct RealFftPlanF64::State {
  explicit State(int64_t half) : fft(static_cast<size_t>(half), false), packed(half) {}
  kissfft<double> fft;
  std::vector<std::complex<double>> packed;  // size / 2 values: DC and Nyquist share the first
};

RealFftPlanF64::RealFftPlanF64(int64_t size) : size_(size) {
  if (size < 2 || size % 2 != 0 || size > (int64_t{1} << 30)) {
    throw ArgumentError("real FFT (float64): the size must be even, >= 2 and < 2^30, got " +
                        std::to_string(size));
  }
  state_ = std::make_unique<State>(size / 2);
}

RealFftPlanF64::~RealFftPlanF64() = default;

void RealFftPlanF64::forward(const double* in, std::complex<double>* out) {
  const int64_t half = size_ / 2;
  state_->fft.transform_real(in, state_->packed.data());
  // transform_real packs the two real bins into the first value: (DC, Nyquist).
  out[0] = {state_->packed[0].real(), 0.0};
  out[half] = {state_->packed[0].imag(), 0.0};
  for (int64_t k = 1; k < half; ++k) out[k] = state_->packed[static_cast<size_t>(k)];
}

}  // namespace hfport
