// clap_log_mel (the float64 FFT, the filters' bands, multithreaded) against its float64 reference
// (signals materialised, direct DFT): each padding mode and truncation, clips shorter than a hop,
// exactly max_length, longer by less than a hop and longer (with the caller's draws), batches of
// mixed lengths, 1 and several threads, F32/F64/BF16 audio; the filters' band projection against
// the dense product; and the errors, each naming what was expected and what was found.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/cast.h"
#include "core/error.h"
#include "expect_error.h"
#include "kernel_test_data.h"
#include "kernels/cpu/mel_projection.h"
#include "ops/audio_front_end.h"
#include "ops/clap_log_mel.h"
#include "scoped_threads.h"

namespace {

using hfport::ClapDraws;
using hfport::ClapLogMelOptions;
using hfport::ClapPadding;
using hfport::ClapTruncation;
using hfport::DType;
using hfport::Tensor;
using namespace hfport_test;

constexpr int64_t kMaxLength = 4800;  // 0.1 s at 48 kHz: 11 frames, a fast reference

// Noise plus a tone per row, [batch, samples] in `dtype`.
Tensor clips(DType dtype, int64_t batch, int64_t samples) {
  const Tensor noise = random_tensor(DType::F64, {batch, samples}, 0.05);
  Tensor a = Tensor::empty(DType::F64, {batch, samples});
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < samples; ++i) {
      const double t = static_cast<double>(i) / 48000.0;
      a.data_as<double>()[b * samples + i] = noise.data_as<double>()[b * samples + i] +
          0.4 * std::sin(2 * std::numbers::pi * (300.0 + 900.0 * b) * t);
    }
  }
  return dtype == DType::F64 ? a : hfport::cast(a, dtype);
}

Tensor lengths_of(const std::vector<int64_t>& n) {
  Tensor t = Tensor::empty(DType::I64, {static_cast<int64_t>(n.size())});
  for (size_t i = 0; i < n.size(); ++i) t.data_as<int64_t>()[i] = n[i];
  return t;
}

ClapLogMelOptions options(ClapTruncation truncation, ClapPadding padding) {
  ClapLogMelOptions o;
  o.sampling_rate = 48000;
  o.max_length = kMaxLength;
  o.truncation = truncation;
  o.padding = padding;
  return o;
}

TEST(ClapLogMel, MatchesTheFloat64ReferenceInEveryMode) {
  // shorter than a hop, shorter, exactly max_length, longer by less than a hop, longer
  const std::vector<int64_t> n = {300, 1234, kMaxLength, kMaxLength + 100, 3 * kMaxLength + 7};
  const Tensor audio = clips(DType::F32, 5, 3 * kMaxLength + 7);
  ClapDraws draws;
  draws.chunk_offsets = Tensor::zeros(DType::I64, {5, 3});
  draws.chunk_offsets.data_as<int64_t>()[4 * 3 + 1] = 9;
  draws.chunk_offsets.data_as<int64_t>()[4 * 3 + 2] = 20;  // the last start: 31 - 11
  draws.crop_offsets = Tensor::zeros(DType::I64, {5});
  draws.crop_offsets.data_as<int64_t>()[3] = 100;
  draws.crop_offsets.data_as<int64_t>()[4] = 2 * kMaxLength + 7;
  for (ClapTruncation truncation : {ClapTruncation::kFusion, ClapTruncation::kRandTrunc}) {
    ClapDraws mode;
    (truncation == ClapTruncation::kFusion ? mode.chunk_offsets : mode.crop_offsets) =
        truncation == ClapTruncation::kFusion ? draws.chunk_offsets : draws.crop_offsets;
    for (ClapPadding padding : {ClapPadding::kRepeatPad, ClapPadding::kRepeat, ClapPadding::kPad}) {
      SCOPED_TRACE("truncation " + std::to_string(static_cast<int>(truncation)) + " padding " +
                   std::to_string(static_cast<int>(padding)));
      const ClapLogMelOptions o = options(truncation, padding);
      const auto got = hfport::clap_log_mel(audio, lengths_of(n), o, mode);
      const auto want = hfport::clap_log_mel_reference(audio, lengths_of(n), o, mode);
      const int64_t channels = truncation == ClapTruncation::kFusion ? 4 : 1;
      EXPECT_EQ(got.input_features.shape(), (hfport::Shape{5, channels, 11, 64}));
      EXPECT_LT(rel_l2(got.input_features, want.input_features), 1e-6);
      const uint8_t* longer = got.is_longer.data_as<uint8_t>();
      // fusion: the clip longer by less than a hop keeps its whole spectrogram, not longer
      const bool fusion = truncation == ClapTruncation::kFusion;
      EXPECT_EQ(std::vector<int>(longer, longer + 5),
                (std::vector<int>{0, 0, 0, fusion ? 0 : 1, 1}));
    }
  }
}

TEST(ClapLogMel, OneAndManyThreadsAndOtherDtypes) {
  const ClapLogMelOptions o = options(ClapTruncation::kFusion, ClapPadding::kRepeatPad);
  const Tensor audio = clips(DType::F32, 3, 4000);
  const Tensor want = hfport::clap_log_mel_reference(audio, Tensor(), o).input_features;
  for (int threads : {1, 2, 5}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    ScopedThreads scoped(threads);
    EXPECT_LT(rel_l2(hfport::clap_log_mel(audio, Tensor(), o).input_features, want), 1e-6);
  }
  for (DType dtype : {DType::F64, DType::BF16}) {
    SCOPED_TRACE(hfport::dtype_name(dtype));
    const Tensor other = clips(dtype, 2, 3000);
    EXPECT_LT(rel_l2(hfport::clap_log_mel(other, Tensor(), o).input_features,
                     hfport::clap_log_mel_reference(other, Tensor(), o).input_features), 1e-6);
  }
}

TEST(ClapLogMel, TheBandProjectionIsTheDenseProduct) {
  hfport::MelFilterBankSpec spec;
  spec.num_frequency_bins = 513;
  spec.num_mel_filters = 64;
  spec.max_frequency = 14000.0;
  spec.sampling_rate = 48000;
  const Tensor filters = hfport::mel_filter_bank(spec);
  const Tensor power = random_tensor(DType::F64, {513}, 1.0, 3.0);
  const hfport::MelProjection projection(filters.data_as<double>(), 513, 64);
  std::vector<double> got(64);
  projection.apply(power.data_as<double>(), got.data());
  for (int64_t m = 0; m < 64; ++m) {
    double want = 0.0;
    for (int64_t k = 0; k < 513; ++k) want += filters.data_as<double>()[k * 64 + m] * power.data_as<double>()[k];
    EXPECT_EQ(got[static_cast<size_t>(m)], want) << "mel " << m;
  }
}

TEST(ClapLogMel, ErrorsNameTheProblem) {
  const Tensor audio = clips(DType::F32, 1, 3 * kMaxLength);
  ClapLogMelOptions o = options(ClapTruncation::kFusion, ClapPadding::kRepeatPad);
  o.sampling_rate = 44100;
  EXPECT_TRUE(throws_exactly<hfport::SamplingRateError>(
      [&] { hfport::clap_log_mel(audio, Tensor(), o); }, {"44100 Hz", "48000 Hz"}));
  o.sampling_rate = 48000;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::clap_log_mel(audio, Tensor(), o); },
      {"clip 0 has 14400 samples, longer than max_length 4800 samples (0.1 s at 48000 Hz)",
       "pass chunk_offsets [batch, 3]"}));
  ClapDraws draws;
  draws.chunk_offsets = Tensor::zeros(DType::I64, {1, 3});
  draws.chunk_offsets.data_as<int64_t>()[1] = 21;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::clap_log_mel(audio, Tensor(), o, draws); },
      {"chunk_offsets[0, 1] is 21", "31 frames", "starts at 0 to 20"}));
  o.truncation = ClapTruncation::kRandTrunc;
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::clap_log_mel(audio, Tensor(), o); },
      {"np.random.randint(0, 9601)", "pass crop_offsets [batch]"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::clap_log_mel(audio, Tensor(), o, draws); }, {"chunk_offsets are fusion's"}));
  EXPECT_TRUE(throws_exactly<hfport::ArgumentError>(
      [&] { hfport::clap_log_mel(Tensor::zeros(DType::I64, {100}), Tensor(), o); },
      {"audio must be a float tensor", "got I64"}));
}

}  // namespace
