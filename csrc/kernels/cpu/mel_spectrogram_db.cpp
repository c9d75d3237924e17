// The power mel spectrogram in decibels on the CPU; see mel_spectrogram_db.h.
#include "kernels/cpu/mel_spectrogram_db.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/fft_real_f64.h"
#include "kernels/cpu/mel_projection.h"

namespace hfport {

namespace {

// Frames one work item handles: enough to amortise the FFT plan it makes.
constexpr int64_t kFramesPerBlock = 64;

template <typename T>
double signal_sample(const MelSpectrogramRow& r, const T* clip, int64_t i) {
  if (i < 0) i = -i;
  if (i >= r.length) i = 2 * (r.length - 1) - i;
  return i < r.extent ? static_cast<double>(clip[i % r.period]) : 0.0;
}

// The windowed frame that starts at x[start] (start may be negative: the centring reflection).
template <typename T>
void gather_frame(const MelSpectrogramDbParams& p, const MelSpectrogramRow& r, int64_t start,
                  double* frame) {
  const T* clip = static_cast<const T*>(r.clip);
  const int64_t offset = start >= 0 ? start % r.period : 0;
  if (start >= 0 && start + p.n_fft <= r.extent && offset + p.n_fft <= r.period) {
    const T* from = clip + offset;  // inside one period of the clip: no index arithmetic
    for (int64_t j = 0; j < p.n_fft; ++j) frame[j] = static_cast<double>(from[j]) * p.window[j];
  } else {
    for (int64_t j = 0; j < p.n_fft; ++j) frame[j] = signal_sample(r, clip, start + j) * p.window[j];
  }
}

// Frames [first, first + count) of row r.
void mel_block(const MelSpectrogramDbParams& p, const MelProjection& projection,
               const MelSpectrogramRow& r, int64_t first, int64_t count) {
  RealFftPlanF64 plan(p.n_fft);
  std::vector<double> frame(static_cast<size_t>(p.n_fft));
  std::vector<std::complex<double>> spectrum(static_cast<size_t>(p.bins));
  std::vector<double> power(static_cast<size_t>(p.bins)), mel(static_cast<size_t>(p.mels));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t start = (first + i) * p.hop - p.n_fft / 2;
    if (p.clip_f64) {
      gather_frame<double>(p, r, start, frame.data());
    } else {
      gather_frame<float>(p, r, start, frame.data());
    }
    plan.forward(frame.data(), spectrum.data());
    for (int64_t k = 0; k < p.bins; ++k) {
      // transformers stores the spectrum as complex64 before it takes the power.
      const double re = static_cast<float>(spectrum[static_cast<size_t>(k)].real());
      const double im = static_cast<float>(spectrum[static_cast<size_t>(k)].imag());
      power[static_cast<size_t>(k)] = re * re + im * im;
    }
    projection.apply(power.data(), mel.data());
    float* out = r.out + (first + i) * p.mels;
    for (int64_t m = 0; m < p.mels; ++m) {
      out[m] = static_cast<float>(10.0 * std::log10(std::max(mel[static_cast<size_t>(m)], 1e-10)));
    }
  }
}

}  // namespace

void mel_spectrogram_db_cpu(const MelSpectrogramDbParams& p) {
  if (p.row_count == 0) return;
  const MelProjection projection(p.filters, p.bins, p.mels);
  // Work items: (row, block of frames), rows of different lengths one after another.
  std::vector<int64_t> first_block(static_cast<size_t>(p.row_count) + 1, 0);
  for (int64_t r = 0; r < p.row_count; ++r) {
    const int64_t frames = mel_spectrogram_frames(p.rows[r].length, p.hop);
    first_block[r + 1] = first_block[r] + (frames + kFramesPerBlock - 1) / kFramesPerBlock;
  }
  parallel_for(first_block.back(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t r =
          std::upper_bound(first_block.begin(), first_block.end(), block) - first_block.begin() - 1;
      const MelSpectrogramRow& row = p.rows[r];
      const int64_t frames = mel_spectrogram_frames(row.length, p.hop);
      const int64_t first = (block - first_block[r]) * kFramesPerBlock;
      mel_block(p, projection, row, first, std::min(kFramesPerBlock, frames - first));
    }
  });
}

}  // namespace hfport
