// log_mel_spectrogram (hfport's FFT + sgemm, multithreaded) against its float64 reference (direct DFT):
// audio shorter than the window, exactly the window, longer (truncated), batches, 1-D audio,
// strided and F64/BF16 audio, 80 and 128 mel bins, poisoned outputs; silence, whose features the
// formula fixes; the real FFT against a direct DFT; and the errors, each naming the argument, what
// was expected and what was found.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "kernels/cpu/fft_real.h"
#include "ops/log_mel.h"
#include "scoped_threads.h"

namespace {

using hfport::DType;
using hfport::LogMelOptions;
using hfport::Tensor;
using namespace hfport_test;

// Noise plus two tones: a spectrum with peaks and a floor, like speech's.
Tensor audio_like(DType dtype, int64_t batch, int64_t samples) {
  Tensor noise = random_tensor(DType::F64, {batch, samples}, 0.05);
  Tensor a = Tensor::empty(dtype, {batch, samples});
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < samples; ++i) {
      const double t = static_cast<double>(i) / 16000.0;
      const double v = noise.data_as<double>()[b * samples + i] +
                       0.5 * std::sin(2 * std::numbers::pi * (220.0 * (b + 1)) * t) +
                       0.2 * std::sin(2 * std::numbers::pi * 3150.0 * t);
      if (dtype == DType::F64) {
        a.data_as<double>()[b * samples + i] = v;
      } else if (dtype == DType::BF16) {
        a.data_as<uint16_t>()[b * samples + i] = hfport::f32_to_bf16(static_cast<float>(v));
      } else {
        a.data_as<float>()[b * samples + i] = static_cast<float>(v);
      }
    }
  }
  return a;
}

LogMelOptions small_window(int64_t n_samples, int64_t mels = 80) {
  LogMelOptions o;
  o.sampling_rate = 16000;
  o.n_samples = n_samples;
  o.feature_size = mels;
  return o;
}

TEST(LogMel, MatchesTheFloat64ReferenceAcrossLengths) {
  const int64_t window = 8000;  // 50 frames
  for (int64_t samples : {int64_t{1234}, window, window + 2345}) {
    for (int64_t batch : {int64_t{1}, int64_t{3}}) {
      SCOPED_TRACE("samples " + std::to_string(samples) + " batch " + std::to_string(batch));
      const Tensor audio = audio_like(DType::F32, batch, samples);
      const LogMelOptions o = small_window(window);
      const Tensor out = poisoned(DType::F32, {batch, 80, window / 160});
      hfport::log_mel_spectrogram(audio, o, out);
      EXPECT_LT(rel_l2(out, hfport::log_mel_spectrogram_reference(audio, o)), kF32Tolerance);
    }
  }
}

TEST(LogMel, OneAndManyThreadsAgreeWithTheReference) {
  const Tensor audio = audio_like(DType::F32, 2, 20000);
  const LogMelOptions o = small_window(24000, 128);
  const Tensor ref = hfport::log_mel_spectrogram_reference(audio, o);
  for (int threads : {1, 2, 5}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    ScopedThreads scoped(threads);
    EXPECT_LT(rel_l2(hfport::log_mel_spectrogram(audio, o), ref), kF32Tolerance);
  }
}

TEST(LogMel, OneDimensionalStridedAndOtherDtypes) {
  const LogMelOptions o = small_window(6400);
  const Tensor one = audio_like(DType::F32, 1, 5000);
  const Tensor flat = one.view({5000});
  EXPECT_EQ(hfport::log_mel_spectrogram(flat, o).shape(), (hfport::Shape{1, 80, 40}));
  EXPECT_LT(rel_l2(hfport::log_mel_spectrogram(flat, o),
                   hfport::log_mel_spectrogram_reference(one, o)), kF32Tolerance);
  // [samples, batch] storage read as [batch, samples] through its strides.
  const Tensor columns = audio_like(DType::F32, 7000, 2);
  const Tensor rows = swap_dims(columns, 0, 1);
  EXPECT_LT(rel_l2(hfport::log_mel_spectrogram(rows, o),
                   hfport::log_mel_spectrogram_reference(rows.contiguous(), o)), kF32Tolerance);
  for (DType dtype : {DType::F64, DType::BF16}) {
    SCOPED_TRACE(hfport::dtype_name(dtype));
    const Tensor audio = audio_like(dtype, 2, 6000);
    EXPECT_LT(rel_l2(hfport::log_mel_spectrogram(audio, o),
                     hfport::log_mel_spectrogram_reference(audio, o)), kF32Tolerance);
  }
}

TEST(LogMel, SilenceIsTheClampedFloorEverywhere) {
  // Every mel power is 0 -> log10(1e-10) = -10 everywhere, the row maximum -10, so every feature
  // is (-10 + 4) / 4 = -1.5.
  const Tensor out = hfport::log_mel_spectrogram(Tensor::zeros(DType::F32, {2, 3000}),
                                                 small_window(4800));
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(out.data_as<float>()[i], -1.5f) << i;
}

TEST(LogMel, RealFftMatchesADirectDft) {
  for (int64_t n : {int64_t{2}, int64_t{6}, int64_t{400}, int64_t{512}}) {
    SCOPED_TRACE("size " + std::to_string(n));
    const Tensor x = random_tensor(DType::F32, {n});
    std::vector<std::complex<float>> got(static_cast<size_t>(n / 2 + 1));
    hfport::RealFftPlan(n).forward(x.data_as<float>(), got.data());
    double err = 0.0, norm = 0.0;
    for (int64_t k = 0; k <= n / 2; ++k) {
      std::complex<double> want = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        want += static_cast<double>(x.data_as<float>()[j]) *
                std::polar(1.0, -2.0 * std::numbers::pi * static_cast<double>((k * j) % n) / n);
      }
      err += std::norm(std::complex<double>(got[static_cast<size_t>(k)]) - want);
      norm += std::norm(want);
    }
    EXPECT_LT(std::sqrt(err / norm), 1e-6);
  }
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([] { hfport::RealFftPlan(401); },
                                                    {"even", "401"}));
}

TEST(LogMel, ErrorsNameTheArgumentAndTheValues) {
  const Tensor audio = audio_like(DType::F32, 1, 4000);
  LogMelOptions o = small_window(4800);
  o.sampling_rate = 44100;
  EXPECT_TRUE(throws_exactly<hfport::SamplingRateError>(
      [&] { hfport::log_mel_spectrogram(audio, o); }, {"44100 Hz", "16000 Hz", "never resamples"}));
  o = small_window(4800);
  o.n_fft = 401;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::log_mel_spectrogram(audio, o); },
                                                    {"n_fft", "401"}));
  o = small_window(150);
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>([&] { hfport::log_mel_spectrogram(audio, o); },
                                                    {"n_samples", "200", "150"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::log_mel_spectrogram(audio.view({1, 1, 4000}), small_window(4800)); },
      {"[samples] or [batch, samples]", "[1, 1, 4000]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::log_mel_spectrogram(Tensor::zeros(DType::I32, {4000}), small_window(4800)); },
      {"audio", "I32"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::log_mel_spectrogram(Tensor::zeros(DType::F32, {2, 0}), small_window(4800)); },
      {"no samples", "[2, 0]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] {
        hfport::log_mel_spectrogram(audio, small_window(4800), Tensor::empty(DType::F32, {1, 80, 29}));
      },
      {"out"}));
}

}  // namespace
