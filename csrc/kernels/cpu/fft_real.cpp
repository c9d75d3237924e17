// RealFftPlan on hfport's own FFT (RealFftSplit<float>). See fft_real.h.
#include "kernels/cpu/fft_real.h"

#include <string>

#include "core/error.h"
#include "kernels/cpu/fft_real_split.h"

namespace hfport {

struct RealFftPlan::State {
  explicit State(int64_t size) : fft(size) {}
  RealFftSplit<float> fft;
};

RealFftPlan::RealFftPlan(int64_t size) : size_(size) {
  if (size < 2 || size % 2 != 0 || size > (int64_t{1} << 30)) {
    throw ArgumentError("real FFT: the size must be even, >= 2 and < 2^30, got " +
                        std::to_string(size));
  }
  state_ = std::make_unique<State>(size);
}

RealFftPlan::~RealFftPlan() = default;

void RealFftPlan::forward(const float* in, std::complex<float>* out) const {
  // const for its callers: the scratch it writes lives behind state_, not in the plan's value.
  state_->fft.forward(in, out);
}

}  // namespace hfport
