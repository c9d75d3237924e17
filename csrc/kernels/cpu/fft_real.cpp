// RealFftPlan on KISS FFT (kiss_fftr). See fft_real.h.
#include "kernels/cpu/fft_real.h"

#include <string>

#include <kissfft/kiss_fftr.h>

#include "core/error.h"

namespace hfport {

static_assert(sizeof(kiss_fft_scalar) == sizeof(float),
              "hfport's RealFftPlan expects the float build of KISS FFT (libkissfft-float)");
static_assert(sizeof(kiss_fft_cpx) == sizeof(std::complex<float>),
              "kiss_fft_cpx and std::complex<float> must share a layout");

struct RealFftPlan::State {
  kiss_fftr_cfg cfg = nullptr;
  ~State() { kiss_fftr_free(cfg); }
};

RealFftPlan::RealFftPlan(int64_t size) : size_(size), state_(std::make_unique<State>()) {
  if (size < 2 || size % 2 != 0 || size > (int64_t{1} << 30)) {
    throw ArgumentError("real FFT: the size must be even, >= 2 and < 2^30, got " +
                        std::to_string(size));
  }
  state_->cfg = kiss_fftr_alloc(static_cast<int>(size), 0, nullptr, nullptr);
  if (state_->cfg == nullptr) {
    throw Error("real FFT: KISS FFT could not allocate a plan of size " + std::to_string(size));
  }
}

RealFftPlan::~RealFftPlan() = default;

void RealFftPlan::forward(const float* in, std::complex<float>* out) const {
  // std::complex<float> is two floats, real first (the standard guarantees the array layout).
  kiss_fftr(state_->cfg, in, reinterpret_cast<kiss_fft_cpx*>(out));
}

}  // namespace hfport
