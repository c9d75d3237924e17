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
#include "kernels/cpu/mel_projection.h"
#include "ops/audio_front_end.h"
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

// log(max(floor, filters^T power)) for one frame, the dense product (the reference's):
// power [bins] -> out [mels].
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
  require_sampling_rate(kOp, o.sampling_rate, o.feature_sampling_rate);
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
  const std::vector<int64_t> out =
      lengths.defined() ? read_index_values(kOp, "lengths", lengths, {batch}, "[batch]")
                        : std::vector<int64_t>(static_cast<size_t>(batch), samples);
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

// transformers' mel_filter_bank(257, num_mel_bins, 20 Hz, rate // 2, rate, norm=None,
// mel_scale="kaldi", triangularize_in_mel_space=True), F64 [257, num_mel_bins].
Tensor kaldi_filters(const FbankOptions& o) {
  MelFilterBankSpec spec;
  spec.num_frequency_bins = kFftLength / 2 + 1;
  spec.num_mel_filters = o.num_mel_bins;
  spec.min_frequency = kMinFrequency;
  spec.max_frequency = static_cast<double>(o.feature_sampling_rate / 2);
  spec.sampling_rate = o.feature_sampling_rate;
  spec.mel_scale = MelScale::kKaldi;
  spec.triangularize_in_mel_space = true;
  return mel_filter_bank(spec);
}

}  // namespace

FbankResult fbank(const Tensor& audio, const Tensor& lengths, const FbankOptions& o) {
  const Tensor rows = checked_rows(audio, o);
  const int64_t batch = rows.shape()[0], samples = rows.shape()[1];
  const std::vector<int64_t> length = checked_lengths(lengths, batch, samples);
  const int64_t mels = o.num_mel_bins, bins = kFftLength / 2 + 1;
  // The filters' bands only (kernels/cpu/mel_projection.h): the same sums as log_mel's dense loop.
  const MelProjection projection(kaldi_filters(o).data_as<double>(), bins, mels);
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
      double* row = logmel.data() + item * mels;
      projection.apply(power.data(), row);
      for (int64_t m = 0; m < mels; ++m) row[m] = std::log(std::max(kMelFloor, row[m]));
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
  const Tensor filters = kaldi_filters(o);
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
