// The entry point of log_mel_spectrogram: checks, the window and the filters, the output, and the
// float64 reference; the CPU kernel is kernels/cpu/log_mel.cpp.
#include "ops/log_mel.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/cast.h"
#include "core/error.h"
#include "kernels/cpu/log_mel.h"
#include "ops/audio_front_end.h"
#include "ops/tensor_arguments.h"

namespace hfport {

namespace {

constexpr const char* kOp = "log_mel_spectrogram";
// transformers' WhisperFeatureExtractor builds its filters up to 8 kHz whatever the rate.
constexpr double kMaxFrequency = 8000.0;

// [batch, samples] view of the audio: a 1-D audio is one row.
Tensor audio_rows(const Tensor& audio) {
  if (audio.ndim() == 2) return audio;
  return Tensor(audio.storage(), audio.byte_offset(), audio.dtype(), {1, audio.shape()[0]},
                {audio.shape()[0] * audio.strides()[0], audio.strides()[0]});
}

// The audio as F32 [batch, samples], any strides kept for F32 (others are rounded once, as the
// feature extractor casts its input to float32).
Tensor audio_rows_f32(const Tensor& audio) {
  const Tensor rows = audio_rows(audio);
  return rows.dtype() == DType::F32 ? rows : cast(rows.contiguous(), DType::F32);
}

// transformers' mel_filter_bank(bins, mels, 0 Hz, 8 kHz, rate, norm="slaney", mel_scale="slaney"),
// F64 [bins, mels].
Tensor whisper_filters(const LogMelParams& p, const LogMelOptions& o) {
  MelFilterBankSpec spec;
  spec.num_frequency_bins = p.bins;
  spec.num_mel_filters = p.mels;
  spec.max_frequency = kMaxFrequency;
  spec.sampling_rate = o.feature_sampling_rate;
  spec.slaney_norm = true;
  spec.mel_scale = MelScale::kSlaney;
  return mel_filter_bank(spec);
}

}  // namespace

LogMelParams check_log_mel_arguments(const Tensor& audio, const LogMelOptions& o) {
  require_sampling_rate(kOp, o.sampling_rate, o.feature_sampling_rate);
  if (o.n_fft < 2 || o.n_fft % 2 != 0) {
    throw ArgumentError(std::string(kOp) + ": n_fft must be even and >= 2, got " +
                        std::to_string(o.n_fft));
  }
  if (o.hop_length < 1) {
    throw ArgumentError(std::string(kOp) + ": hop_length must be >= 1, got " +
                        std::to_string(o.hop_length));
  }
  if (o.feature_size < 1) {
    throw ArgumentError(std::string(kOp) + ": feature_size must be >= 1, got " +
                        std::to_string(o.feature_size));
  }
  if (o.n_samples <= o.n_fft / 2 || o.n_samples < o.hop_length) {
    throw ArgumentError(std::string(kOp) + ": n_samples must exceed n_fft / 2 = " +
                        std::to_string(o.n_fft / 2) + " (reflection padding) and hold one hop of " +
                        std::to_string(o.hop_length) + ", got " + std::to_string(o.n_samples));
  }
  require_mono_audio(kOp, audio);
  LogMelParams p;
  p.batch = audio.ndim() == 1 ? 1 : audio.shape()[0];
  p.samples = audio.shape().back();
  if (p.samples < 1) {
    throw ArgumentError(std::string(kOp) + ": audio holds no samples, got shape " +
                        shape_to_string(audio.shape()));
  }
  p.n_samples = o.n_samples;
  p.n_fft = o.n_fft;
  p.hop = o.hop_length;
  p.frames = o.n_samples / o.hop_length;
  p.bins = o.n_fft / 2 + 1;
  p.mels = o.feature_size;
  return p;
}

Tensor log_mel_spectrogram(const Tensor& audio, const LogMelOptions& options, const Tensor& out) {
  require_host_device(kOp, op_device(kOp, {{"audio", &audio}, {"out", &out}}));
  LogMelParams p = check_log_mel_arguments(audio, options);
  Tensor result = output_tensor(kOp, out, DType::F32, {p.batch, p.mels, p.frames});
  const Tensor rows = audio_rows_f32(audio);
  require_no_overlap(kOp, result, rows, "audio");
  const std::vector<double> window64 = hann_window_periodic(p.n_fft);
  const std::vector<float> window(window64.begin(), window64.end());
  // [bins, mels] float64 -> [mels, bins] F32, the rounding the feature extractor's torch path does.
  const Tensor bank = whisper_filters(p, options);
  std::vector<float> filters(static_cast<size_t>(p.mels * p.bins));
  for (int64_t k = 0; k < p.bins; ++k) {
    for (int64_t m = 0; m < p.mels; ++m) {
      filters[static_cast<size_t>(m * p.bins + k)] =
          static_cast<float>(bank.data_as<double>()[k * p.mels + m]);
    }
  }
  p.audio = rows.data_as<float>();
  p.audio_batch_stride = rows.strides()[0];
  p.audio_sample_stride = rows.strides()[1];
  p.window = window.data();
  p.filters = filters.data();
  p.out = result.data_as<float>();
  log_mel_cpu(p);
  return result;
}

Tensor log_mel_spectrogram_reference(const Tensor& audio, const LogMelOptions& options) {
  const char* op = "log_mel_spectrogram_reference";
  require_host_device(op, op_device(op, {{"audio", &audio}}));
  const LogMelParams p = check_log_mel_arguments(audio, options);
  const Tensor rows = audio_rows(audio);
  const std::vector<double> window = hann_window_periodic(p.n_fft);
  const Tensor bank = whisper_filters(p, options);
  const double* filters = bank.data_as<double>();  // [bins, mels]
  Tensor result = Tensor::empty(DType::F64, {p.batch, p.mels, p.frames});
  double* out = result.data_as<double>();
  std::vector<double> cosines(static_cast<size_t>(p.n_fft)), sines(cosines.size());
  for (int64_t n = 0; n < p.n_fft; ++n) {
    const double angle = 2.0 * std::numbers::pi * static_cast<double>(n) / static_cast<double>(p.n_fft);
    cosines[static_cast<size_t>(n)] = std::cos(angle);
    sines[static_cast<size_t>(n)] = std::sin(angle);
  }
  std::vector<double> x(static_cast<size_t>(p.n_samples)), frame(cosines.size()),
      power(static_cast<size_t>(p.bins));
  const int64_t row_stride = rows.strides()[0], sample_stride = rows.strides()[1];
  for (int64_t b = 0; b < p.batch; ++b) {
    // Widened exactly, after the rounding to F32 the feature extractor applies to its input.
    for (int64_t i = 0; i < p.n_samples; ++i) {
      x[static_cast<size_t>(i)] =
          i < p.samples ? static_cast<double>(static_cast<float>(load_as_f64(
                              rows.data(), rows.dtype(), b * row_stride + i * sample_stride)))
                        : 0.0;
    }
    double* row = out + b * p.mels * p.frames;
    for (int64_t t = 0; t < p.frames; ++t) {
      for (int64_t j = 0; j < p.n_fft; ++j) {
        int64_t pos = t * p.hop - p.n_fft / 2 + j;
        if (pos < 0) pos = -pos;
        if (pos >= p.n_samples) pos = 2 * (p.n_samples - 1) - pos;
        frame[static_cast<size_t>(j)] = x[static_cast<size_t>(pos)] * window[static_cast<size_t>(j)];
      }
      for (int64_t k = 0; k < p.bins; ++k) {
        double re = 0.0, im = 0.0;
        for (int64_t n = 0; n < p.n_fft; ++n) {
          const size_t phase = static_cast<size_t>((k * n) % p.n_fft);
          re += frame[static_cast<size_t>(n)] * cosines[phase];
          im -= frame[static_cast<size_t>(n)] * sines[phase];
        }
        power[static_cast<size_t>(k)] = re * re + im * im;
      }
      for (int64_t m = 0; m < p.mels; ++m) {
        double mel = 0.0;
        for (int64_t k = 0; k < p.bins; ++k) mel += filters[k * p.mels + m] * power[static_cast<size_t>(k)];
        row[m * p.frames + t] = std::log10(std::max(mel, 1e-10));
      }
    }
    const double peak = *std::max_element(row, row + p.mels * p.frames);
    for (int64_t i = 0; i < p.mels * p.frames; ++i) row[i] = (std::max(row[i], peak - 8.0) + 4.0) / 4.0;
  }
  return result;
}

}  // namespace hfport
