// RealFftPlanF64 on hfport's own FFT (RealFftSplit<double>). See fft_real_f64.h.
#include "kernels/cpu/fft_real_f64.h"

#include <string>

#include "core/error.h"
#include "kernels/cpu/fft_real_split.h"

namespace hfport {

struct RealFftPlanF64::State {
  explicit State(int64_t size) : fft(size) {}
  RealFftSplit<double> fft;
};

RealFftPlanF64::RealFftPlanF64(int64_t size) : size_(size) {
  if (size < 2 || size % 2 != 0 || size > (int64_t{1} << 30)) {
    throw ArgumentError("real FFT (float64): the size must be even, >= 2 and < 2^30, got " +
                        std::to_string(size));
  }
  state_ = std::make_unique<State>(size);
}

RealFftPlanF64::~RealFftPlanF64() = default;

void RealFftPlanF64::forward(const double* in, std::complex<double>* out) {
  state_->fft.forward(in, out);
}

}  // namespace hfport
