// The filter-bank front end of Wav2Vec2-BERT. See fbank.h for the computation.
#include "ops/fbank.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <string>
#include <vector>

#include "core/cast.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/fft_real_f64.h"
#include "ops/tensor_arguments.h"

namespace hfport {

namespace {

constexpr const char* kOp = "fbank";
constexpr int64_t kFrameLength = 400;  // 25 ms at 16 kHz
constexpr int64_t kHop = 160;          // 10 ms
constexpr int64_t kFftLength = 512;
constexpr double kPreemphasis = 0.97;
constexpr double kMelFloor = 1.192092955078125e-07;  // float32 epsilon, as Kaldi floors
constexpr double kMinFrequency = 20.0;

double hertz_to_mel_kaldi(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

// The Povey window: np.hanning(n) ** 0.85, np.hanning being the symmetric Hann window.
std::vector<double> povey_window(int64_t n) {
  std::vector<double> w(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    const double hann = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(j) /
                                             static_cast<double>(n - 1));
    w[static_cast<size_t>(j)] = std::pow(hann, 0.85);
  }
  return w;
}

// Frames of an utterance of `length` samples (transformers' int(1 + floor((size - 400) / 160))).
int64_t frame_count(int64_t length) { return 1 + (length - kFrameLength) / kHop; }

// One frame's samples, ready for the FFT: scaled to 16 bits, DC removed, pre-emphasised, windowed,
// in float64 as transformers' spectrogram computes them. `x`: kFrameLength samples (F64).
void prepare_frame(const double* x, const std::vector<double>& window, double* out) {
  double mean = 0.0;
  for (int64_t n = 0; n < kFrameLength; ++n) mean += x[n];
  mean /= static_cast<double>(kFrameLength);
  for (int64_t n = 0; n < kFrameLength; ++n) out[n] = x[n] - mean;
  for (int64_t n = kFrameLength - 1; n >= 1; --n) out[n] -= kPreemphasis * out[n - 1];
  out[0] *= 1.0 - kPreemphasis;
  for (int64_t n = 0; n < kFrameLength; ++n) out[n] *= window[static_cast<size_t>(n)];
}

// log(max(floor, filters^T power)) for one frame: power [bins] -> out [mels].
void log_mel(const std::vector<double>& power, const Tensor& filters, double* out) {
  const int64_t bins = filters.shape()[0], mels = filters.shape()[1];
  const double* f = filters.data_as<double>();
  for (int64_t m = 0; m < mels; ++m) {
    double sum = 0.0;
    for (int64_t k = 0; k < bins; ++k) sum += f[k * mels + m] * power[static_cast<size_t>(k)];
    out[m] = std::log(std::max(kMelFloor, sum));
  }
}

// numpy's float32 pairwise summation (pairwise_sum_FLOAT), which its reductions use along a
// contiguous axis, as they do over the frames of the extractor's transposed [frames, mels] array:
// under 8 values one by one; up to 128, eight interleaved partial sums then the rest one by one;
// above, the halves (cut at a multiple of 8) summed apart.
float pairwise_sum_f32(const float* a, int64_t n, int64_t stride) {
  if (n < 8) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += a[i * stride];
    return sum;
  }
  if (n <= 128) {
    float r[8];
    for (int64_t j = 0; j < 8; ++j) r[j] = a[j * stride];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int64_t j = 0; j < 8; ++j) r[j] += a[(i + j) * stride];
    }
    float sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) sum += a[i * stride];
    return sum;
  }
  int64_t half = n / 2;
  half -= half % 8;
  return pairwise_sum_f32(a, half, stride) + pairwise_sum_f32(a + half * stride, n - half, stride);
}

// Checks the options and the audio; returns the audio as contiguous F64 rows [batch, samples]
// scaled to 16 bits (transformers scales the float32 waveform by 2^15, exactly, then widens).
Tensor checked_rows(const Tensor& audio, const FbankOptions& o) {
  if (o.sampling_rate != o.feature_sampling_rate) {
    throw SamplingRateError(std::string(kOp) + ": the audio is sampled at " +
                            std::to_string(o.sampling_rate) + " Hz but the front end expects " +
                            std::to_string(o.feature_sampling_rate) + " Hz (the feature "
                            "extractor's sampling_rate); resample it first: hfport never resamples");
  }
  if (o.num_mel_bins < 1 || o.stride < 2) {
    // stride 1 would select no frame for the mask in transformers (indices % 1 == 1 never holds)
    throw ArgumentError(std::string(kOp) + ": needs num_mel_bins >= 1 and stride >= 2, got " +
                        std::to_string(o.num_mel_bins) + " and " + std::to_string(o.stride));
  }
  require_float_type(kOp, "audio", audio);
  if (audio.ndim() != 1 && audio.ndim() != 2) {
    throw ArgumentError(std::string(kOp) + ": audio must be [samples] or [batch, samples], got " +
                        shape_to_string(audio.shape()));
  }
  require_host_device(kOp, audio.device());
  const Tensor rows = audio.ndim() == 2 ? audio : audio.view({1, audio.shape()[0]});
  // float32 first, as the feature extractor casts its input, then * 2^15 (exact) in F64.
  Tensor wide = cast(cast(rows.contiguous(), DType::F32), DType::F64);
  double* v = wide.data_as<double>();
  for (int64_t i = 0; i < wide.numel(); ++i) v[i] *= 32768.0;
  return wide;
}

// Each row's length in samples, checked against the row width and the one-frame minimum.
std::vector<int64_t> checked_lengths(const Tensor& lengths, int64_t batch, int64_t samples) {
  std::vector<int64_t> out(static_cast<size_t>(batch), samples);
  if (lengths.defined()) {
    if (lengths.dtype() != DType::I64 && lengths.dtype() != DType::I32) {
      throw ArgumentError(std::string(kOp) + ": lengths must be I64 or I32, got " +
                          std::string(dtype_name(lengths.dtype())));
    }
    require_shape(kOp, "lengths", lengths, {batch}, "[batch]");
    const Tensor c = lengths.contiguous();
    for (int64_t b = 0; b < batch; ++b) {
      out[static_cast<size_t>(b)] = c.dtype() == DType::I64 ? c.data_as<int64_t>()[b]
                                                             : c.data_as<int32_t>()[b];
    }
  }
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = out[static_cast<size_t>(b)];
    if (n < kFrameLength || n > samples) {
      throw ArgumentError(std::string(kOp) + ": row " + std::to_string(b) + " has " +
                          std::to_string(n) + " samples of audio; it needs at least " +
                          std::to_string(kFrameLength) + " (one 25 ms frame) and at most the " +
                          std::to_string(samples) + " the row holds");
    }
  }
  return out;
}

}  // namespace

Tensor mel_filter_bank_kaldi(int64_t num_frequency_bins, int64_t num_mel_filters,
                             double min_frequency, double max_frequency, int64_t sampling_rate) {
  if (num_frequency_bins < 2 || num_mel_filters < 1 || !(min_frequency <= max_frequency) ||
      sampling_rate < 1) {
    throw ArgumentError("mel_filter_bank_kaldi: needs num_frequency_bins >= 2, num_mel_filters >= "
                        "1, min_frequency <= max_frequency and sampling_rate >= 1");
  }
  // np.linspace(mel_min, mel_max, mels + 2) in mel space, the last point exactly mel_max.
  const double mel_min = hertz_to_mel_kaldi(min_frequency);
  const double mel_max = hertz_to_mel_kaldi(max_frequency);
  const int64_t points = num_mel_filters + 2;
  std::vector<double> edges(static_cast<size_t>(points));
  const double step = (mel_max - mel_min) / static_cast<double>(points - 1);
  for (int64_t i = 0; i < points; ++i) edges[static_cast<size_t>(i)] = static_cast<double>(i) * step + mel_min;
  edges.back() = mel_max;
  const double bin_width =
      static_cast<double>(sampling_rate) / static_cast<double>((num_frequency_bins - 1) * 2);
  Tensor filters = Tensor::empty(DType::F64, {num_frequency_bins, num_mel_filters});
  double* f = filters.data_as<double>();
  for (int64_t k = 0; k < num_frequency_bins; ++k) {
    const double mel = hertz_to_mel_kaldi(bin_width * static_cast<double>(k));
    for (int64_t m = 0; m < num_mel_filters; ++m) {
      // transformers' _create_triangular_filter_bank: min(down, up) clamped at 0.
      const double down = -(edges[m] - mel) / (edges[m + 1] - edges[m]);
      const double up = (edges[m + 2] - mel) / (edges[m + 2] - edges[m + 1]);
      f[k * num_mel_filters + m] = std::max(0.0, std::min(down, up));
    }
  }
  return filters;
}

FbankResult fbank(const Tensor& audio, const Tensor& lengths, const FbankOptions& o) {
  const Tensor rows = checked_rows(audio, o);
  const int64_t batch = rows.shape()[0], samples = rows.shape()[1];
  const std::vector<int64_t> length = checked_lengths(lengths, batch, samples);
  const int64_t mels = o.num_mel_bins, bins = kFftLength / 2 + 1;
  const Tensor filters = mel_filter_bank_kaldi(bins, mels, kMinFrequency,
                                               static_cast<double>(o.feature_sampling_rate / 2),
                                               o.feature_sampling_rate);
  const std::vector<double> window = povey_window(kFrameLength);

  std::vector<int64_t> frames(static_cast<size_t>(batch)), first(static_cast<size_t>(batch) + 1, 0);
  int64_t longest = 0;
  for (int64_t b = 0; b < batch; ++b) {
    frames[b] = frame_count(length[b]);
    first[b + 1] = first[b] + frames[b];
    longest = std::max(longest, frames[b]);
  }
  // Every utterance's log-mel frames, one after another: F64 [total frames, mels].
  std::vector<double> logmel(static_cast<size_t>(first[batch] * mels));
  const double* audio64 = rows.data_as<double>();
  parallel_for(first[batch], 8, [&](int64_t begin, int64_t end) {
    RealFftPlanF64 plan(kFftLength);  // one per thread: a plan is not shared
    std::vector<double> buffer(kFftLength, 0.0);  // the frame, zero padded to the FFT length
    std::vector<std::complex<double>> spectrum(static_cast<size_t>(bins));
    std::vector<double> power(static_cast<size_t>(bins));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = std::upper_bound(first.begin(), first.end(), item) - first.begin() - 1;
      const int64_t t = item - first[b];
      prepare_frame(audio64 + b * samples + t * kHop, window, buffer.data());
      plan.forward(buffer.data(), spectrum.data());
      for (int64_t k = 0; k < bins; ++k) {
        // transformers stores the spectrum as complex64 before taking its power.
        const double re = static_cast<float>(spectrum[k].real());
        const double im = static_cast<float>(spectrum[k].imag());
        power[k] = re * re + im * im;
      }
      log_mel(power, filters, logmel.data() + item * mels);
    }
  });

  // Normalised per utterance and mel bin in float32, step for step as numpy computes the
  // extractor's (x - x.mean(0)) / sqrt(x.var(0, ddof=1) + 1e-7) on its float32 frames. Matching those roundings
  // matters: the division by a small spread (a steady tone) magnifies them. (numpy sums the
  // frames pairwise, pairwise_sum_f32, as they lie along the contiguous axis of its array.)
  const int64_t padded = (longest + o.stride - 1) / o.stride * o.stride;
  Tensor features = Tensor::zeros(DType::F32, {batch, padded / o.stride, mels * o.stride});
  Tensor mask = Tensor::zeros(DType::I64, {batch, padded / o.stride});
  float* out = features.data_as<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const double* x64 = logmel.data() + first[b] * mels;
    const int64_t n = frames[b];
    std::vector<float> x(static_cast<size_t>(n * mels));
    for (int64_t i = 0; i < n * mels; ++i) x[static_cast<size_t>(i)] = static_cast<float>(x64[i]);
    std::vector<float> mean(static_cast<size_t>(mels), 0.0f), scale(static_cast<size_t>(mels), 1.0f);
    if (o.normalize) {
      std::vector<float> deviation2(static_cast<size_t>(n));
      for (int64_t m = 0; m < mels; ++m) {
        mean[m] = pairwise_sum_f32(x.data() + m, n, mels) / static_cast<float>(n);
        for (int64_t t = 0; t < n; ++t) {
          const float d = x[t * mels + m] - mean[m];
          deviation2[static_cast<size_t>(t)] = d * d;
        }
        const float squares = pairwise_sum_f32(deviation2.data(), n, 1);
        // ddof 1; one frame gives NaN there (0 / 0) and here.
        const float variance = squares / static_cast<float>(n - 1);
        scale[m] = std::sqrt(variance + 1e-7f);
      }
    }
    // Frame t lands in row t / stride at column (t % stride) * mels: `stride` frames side by side.
    for (int64_t t = 0; t < n; ++t) {
      float* row = out + (b * padded + t) * mels;
      for (int64_t m = 0; m < mels; ++m) {
        const float centred = x[t * mels + m] - mean[m];
        row[m] = o.normalize ? centred / scale[m] : x[t * mels + m];
      }
    }
    // A stacked row counts when its second frame is real: the extractor keeps the frames whose
    // index % stride == 1 of its padded mask (for stride 2, the pair's last frame).
    for (int64_t r = 0; r < padded / o.stride; ++r) {
      mask.data_as<int64_t>()[b * (padded / o.stride) + r] = r * o.stride + 1 < n ? 1 : 0;
    }
  }
  return {features, mask};
}

Tensor fbank_frames_reference(const Tensor& audio, const FbankOptions& o) {
  if (audio.ndim() != 1) {
    throw ArgumentError(std::string(kOp) + " reference: audio must be [samples], got " +
                        shape_to_string(audio.shape()));
  }
  const Tensor rows = checked_rows(audio, o);
  const int64_t samples = rows.shape()[1];
  const int64_t frames = frame_count(checked_lengths(Tensor(), 1, samples)[0]);
  const int64_t mels = o.num_mel_bins, bins = kFftLength / 2 + 1;
  const Tensor filters = mel_filter_bank_kaldi(bins, mels, kMinFrequency,
                                               static_cast<double>(o.feature_sampling_rate / 2),
                                               o.feature_sampling_rate);
  const std::vector<double> window = povey_window(kFrameLength);
  Tensor out = Tensor::empty(DType::F64, {frames, mels});
  std::vector<double> prepared(kFrameLength), power(static_cast<size_t>(bins));
  for (int64_t t = 0; t < frames; ++t) {
    prepare_frame(rows.data_as<double>() + t * kHop, window, prepared.data());
    for (int64_t k = 0; k < bins; ++k) {
      double re = 0.0, im = 0.0;
      for (int64_t n = 0; n < kFrameLength; ++n) {  // the zero padding to 512 adds nothing
        const double angle = -2.0 * std::numbers::pi * static_cast<double>(k * n % kFftLength) /
                             static_cast<double>(kFftLength);
        re += prepared[n] * std::cos(angle);
        im += prepared[n] * std::sin(angle);
      }
      power[k] = re * re + im * im;
    }
    log_mel(power, filters, out.data_as<double>() + t * mels);
  }
  return out;
}

}  // namespace hfport
