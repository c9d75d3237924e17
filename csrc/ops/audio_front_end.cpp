// The pieces the audio front ends share; see audio_front_end.h.
#include "ops/audio_front_end.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "ops/tensor_arguments.h"

namespace hfport {

namespace {

double hertz_to_mel(double hz, MelScale scale) {
  switch (scale) {
    case MelScale::kHtk:
      return 2595.0 * std::log10(1.0 + hz / 700.0);
    case MelScale::kKaldi:
      return 1127.0 * std::log(1.0 + hz / 700.0);
    case MelScale::kSlaney:
      break;
  }
  // Slaney's scale: linear below 1 kHz, logarithmic above.
  const double logstep = 27.0 / std::log(6.4);
  return hz >= 1000.0 ? 15.0 + std::log(hz / 1000.0) * logstep : 3.0 * hz / 200.0;
}

double mel_to_hertz(double mel, MelScale scale) {
  switch (scale) {
    case MelScale::kHtk:
      return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
    case MelScale::kKaldi:
      return 700.0 * (std::exp(mel / 1127.0) - 1.0);
    case MelScale::kSlaney:
      break;
  }
  const double logstep = std::log(6.4) / 27.0;
  return mel >= 15.0 ? 1000.0 * std::exp(logstep * (mel - 15.0)) : 200.0 * mel / 3.0;
}

}  // namespace

void require_sampling_rate(const char* op, int64_t audio_rate, int64_t front_end_rate) {
  if (audio_rate != front_end_rate) {
    throw SamplingRateError(std::string(op) + ": the audio is sampled at " +
                            std::to_string(audio_rate) + " Hz but the front end expects " +
                            std::to_string(front_end_rate) + " Hz (the feature extractor's "
                            "sampling_rate); resample it first: hfport never resamples");
  }
}

void require_mono_audio(const char* op, const Tensor& audio) {
  require_defined(op, "audio", audio);
  const DType dt = audio.dtype();
  if (dt != DType::F32 && dt != DType::F64 && dt != DType::F16 && dt != DType::BF16) {
    throw ArgumentError(std::string(op) + ": audio must be a float tensor (F32, F64, F16 or "
                        "BF16), got " + std::string(dtype_name(dt)));
  }
  if (audio.ndim() != 1 && audio.ndim() != 2) {
    throw ArgumentError(std::string(op) + ": audio must be [samples] or [batch, samples] "
                        "(mono), got " + shape_to_string(audio.shape()));
  }
}

std::vector<double> linspace(double start, double stop, int64_t count) {
  std::vector<double> v(static_cast<size_t>(std::max<int64_t>(count, 0)));
  const double step = count > 1 ? (stop - start) / static_cast<double>(count - 1) : 0.0;
  for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i) * step + start;
  if (count > 1) v.back() = stop;
  return v;
}

std::vector<double> hann_window_periodic(int64_t n) {
  std::vector<double> w(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    const double k = static_cast<double>(2 * j - n);
    w[static_cast<size_t>(j)] = 0.5 + 0.5 * std::cos(std::numbers::pi * k / static_cast<double>(n));
  }
  return w;
}

MelScale mel_scale_from_name(const char* op, const std::string& name) {
  if (name == "htk") return MelScale::kHtk;
  if (name == "kaldi") return MelScale::kKaldi;
  if (name == "slaney") return MelScale::kSlaney;
  throw ArgumentError(std::string(op) + ": mel_scale must be \"htk\", \"kaldi\" or \"slaney\", got \"" +
                      name + "\"");
}

Tensor mel_filter_bank(const MelFilterBankSpec& s) {
  const int64_t bins = s.num_frequency_bins, mels = s.num_mel_filters;
  if (bins < 2 || mels < 1 || s.sampling_rate < 1 || !(s.min_frequency <= s.max_frequency)) {
    throw ArgumentError("mel_filter_bank: needs num_frequency_bins >= 2, num_mel_filters >= 1, a "
                        "sampling rate >= 1 and min_frequency <= max_frequency, got bins " +
                        std::to_string(bins) + ", mels " + std::to_string(mels) + ", rate " +
                        std::to_string(s.sampling_rate) + ", " + std::to_string(s.min_frequency) +
                        " to " + std::to_string(s.max_frequency) + " Hz");
  }
  // The filters' edges and the FFT bins' positions, in Hz, or both in mels when triangularised in
  // mel space (as torchaudio's Kaldi compliance does).
  const std::vector<double> mel_points = linspace(hertz_to_mel(s.min_frequency, s.mel_scale),
                                                  hertz_to_mel(s.max_frequency, s.mel_scale),
                                                  mels + 2);
  std::vector<double> edges(mel_points.size()), fft_points(static_cast<size_t>(bins));
  if (s.triangularize_in_mel_space) {
    edges = mel_points;
    const double bin_width =
        static_cast<double>(s.sampling_rate) / static_cast<double>((bins - 1) * 2);
    for (int64_t k = 0; k < bins; ++k) {
      fft_points[static_cast<size_t>(k)] = hertz_to_mel(bin_width * static_cast<double>(k), s.mel_scale);
    }
  } else {
    for (size_t i = 0; i < edges.size(); ++i) edges[i] = mel_to_hertz(mel_points[i], s.mel_scale);
    // np.linspace(0, sampling_rate // 2, bins): the integer half, as numpy's floor division gives.
    fft_points = linspace(0.0, static_cast<double>(s.sampling_rate / 2), bins);
  }
  Tensor bank = Tensor::empty(DType::F64, {bins, mels});
  double* w = bank.data_as<double>();
  for (int64_t k = 0; k < bins; ++k) {
    const double at = fft_points[static_cast<size_t>(k)];
    for (int64_t m = 0; m < mels; ++m) {
      const size_t i = static_cast<size_t>(m);
      // _create_triangular_filter_bank: slopes = edges - fft_points; down = -slopes[m] / diff[m],
      // up = slopes[m + 2] / diff[m + 1]; max(0, min(down, up)); then Slaney's area norm.
      const double down = -(edges[i] - at) / (edges[i + 1] - edges[i]);
      const double up = (edges[i + 2] - at) / (edges[i + 2] - edges[i + 1]);
      const double triangle = std::max(0.0, std::min(down, up));
      w[k * mels + m] = s.slaney_norm ? triangle * (2.0 / (edges[i + 2] - edges[i])) : triangle;
    }
  }
  return bank;
}

}  // namespace hfport
