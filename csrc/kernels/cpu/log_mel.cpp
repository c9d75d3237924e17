// Whisper's log-mel spectrogram on the CPU; see log_mel.h.
#include "kernels/cpu/log_mel.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/blas_symbols.h"
#include "kernels/cpu/fft_real.h"

namespace hfport {

namespace {

// Frames one block handles: its power buffer ([block, 201] F32, 100 KB at 128) stays in L2 while
// the sgemm reads it.
constexpr int64_t kFramesPerBlock = 128;

// The sample x[position] of the row, padded or truncated to n_samples, reflected past its ends.
inline float padded_sample(const LogMelParams& p, const float* row, int64_t position) {
  if (position < 0) position = -position;
  if (position >= p.n_samples) position = 2 * (p.n_samples - 1) - position;
  return position < p.samples ? row[position * p.audio_sample_stride] : 0.0f;
}

// Rows [first, first + count) of out's row b as log10 mels.
void log_mel_block(const LogMelParams& p, int64_t b, int64_t first, int64_t count) {
  const RealFftPlan plan(p.n_fft);
  std::vector<float> frame(static_cast<size_t>(p.n_fft));
  std::vector<std::complex<float>> spectrum(static_cast<size_t>(p.bins));
  std::vector<float> power(static_cast<size_t>(count * p.bins));
  const float* row = p.audio + b * p.audio_batch_stride;
  const int64_t half = p.n_fft / 2;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t start = (first + i) * p.hop - half;
    if (start >= 0 && start + p.n_fft <= std::min(p.samples, p.n_samples) &&
        p.audio_sample_stride == 1) {
      for (int64_t j = 0; j < p.n_fft; ++j) frame[j] = row[start + j] * p.window[j];
    } else {
      for (int64_t j = 0; j < p.n_fft; ++j) frame[j] = padded_sample(p, row, start + j) * p.window[j];
    }
    plan.forward(frame.data(), spectrum.data());
    float* out = power.data() + i * p.bins;
    for (int64_t k = 0; k < p.bins; ++k) out[k] = std::norm(spectrum[k]);
  }
  // out[b][m, first + i] = sum_k filters[m, k] power[i, k]
  float* dst = p.out + b * p.mels * p.frames + first;
  HFPORT_BLAS(cblas_sgemm)(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(p.mels),
              static_cast<blasint>(count), static_cast<blasint>(p.bins), 1.0f, p.filters,
              static_cast<blasint>(p.bins), power.data(), static_cast<blasint>(p.bins), 0.0f, dst,
              static_cast<blasint>(p.frames));
  for (int64_t m = 0; m < p.mels; ++m) {
    float* line = dst + m * p.frames;
    for (int64_t i = 0; i < count; ++i) line[i] = std::log10(std::max(line[i], 1e-10f));
  }
}

}  // namespace

void log_mel_cpu(const LogMelParams& p) {
  if (p.batch == 0) return;
  use_single_threaded_blas();  // as linear's GEMM: the pool is the only threads
  const int64_t blocks_per_row = (p.frames + kFramesPerBlock - 1) / kFramesPerBlock;
  parallel_for(p.batch * blocks_per_row, 1, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t b = block / blocks_per_row;
      const int64_t first = (block % blocks_per_row) * kFramesPerBlock;
      log_mel_block(p, b, first, std::min(kFramesPerBlock, p.frames - first));
    }
  });
  // The dynamic-range clamp needs each row's maximum: a second, cheap pass.
  const int64_t per_row = p.mels * p.frames;
  std::vector<float> row_max(static_cast<size_t>(p.batch));
  parallel_for(p.batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float* x = p.out + b * per_row;
      row_max[static_cast<size_t>(b)] = *std::max_element(x, x + per_row);
    }
  });
  const int64_t chunk = int64_t{1} << 16;
  const int64_t chunks_per_row = (per_row + chunk - 1) / chunk;
  parallel_for(p.batch * chunks_per_row, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t b = c / chunks_per_row;
      const float floor = row_max[static_cast<size_t>(b)] - 8.0f;
      float* x = p.out + b * per_row;
      const int64_t lo = (c % chunks_per_row) * chunk, hi = std::min(per_row, lo + chunk);
      for (int64_t i = lo; i < hi; ++i) x[i] = (std::max(x[i], floor) + 4.0f) / 4.0f;
    }
  });
}

}  // namespace hfport
