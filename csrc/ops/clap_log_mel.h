// CLAP's front end: the features transformers' ClapFeatureExtractor produces (input_features and
// is_longer), for clips of different lengths in one batch.
//
// Each clip (a row of `audio`, its first lengths[b] samples) becomes a signal of max_length
// samples (max_length_s * sampling rate, 480000: 10 s at 48 kHz), as _get_input_mel does:
//   shorter than max_length, by `padding`:
//     repeatpad (default) the clip tiled int(max_length / n) times, then zeros to max_length
//     repeat              the clip tiled int(max_length / n) + 1 times, cut at max_length
//     pad                 the clip, then zeros to max_length
//   exactly max_length: the clip
//   longer, by `truncation`:
//     rand_trunc  the max_length samples from crop_offsets[b] (transformers draws the offset with
//                 np.random.randint(0, n - max_length + 1)); is_longer true
//     fusion      the mel spectrogram of the whole clip (total frames), of which three chunks of
//                 max_length / hop + 1 frames from chunk_offsets[b] (transformers draws them
//                 with np.random.choice from the three thirds of the possible starts) and the whole
//                 spectrogram shrunk to that many frames (torch's bilinear interpolation,
//                 align_corners=False, in float32) are stacked as [shrunk, front, middle, back];
//                 is_longer true. When the clip has as many frames as the chunk (longer by less
//                 than a hop), the whole spectrogram 4 times and is_longer false, as transformers.
// then the power mel spectrogram in decibels of each signal (kernels/mel_spectrogram_db_params.h:
// periodic Hann window of fft_window_size, hop_length, centred with reflection, |rfft|^2 in
// float64, mel filters, 10 log10(max(., 1e-10))), with the filters the extractor uses for the
// truncation: mel_filter_bank(fft / 2 + 1, feature_size, frequency_min, frequency_max, rate,
// norm=None, mel_scale="htk") for fusion, norm="slaney", mel_scale="slaney" for rand_trunc.
//   input_features F32 [batch, channels, max_length / hop + 1, feature_size]: channels 4 for
//                  fusion (a short clip's spectrogram 4 times), 1 for rand_trunc
//   is_longer      BOOL [batch, 1]
//
// transformers draws at random where a clip is longer than max_length, and, for fusion, marks one
// random clip longer when none is (np.random.randint(0, batch)). hfport draws nothing: the caller
// gives the draws (ClapDraws), which reproduces a seeded transformers call, and a clip longer than
// max_length without them is an ArgumentError naming the limit; without longer_index no clip is
// marked (docs/decisions.md, "CLAP's random draws are the caller's").
//
// audio: [samples] or [batch, samples], F32/F64/F16/BF16, any strides: its values widened to
// float64 exactly, as the extractor converts batches with np.asarray(..., np.float64). lengths:
// I64/I32 [batch] (default: every row whole), each >= 1. The audio's sampling rate must equal the
// front end's (48 kHz by default): SamplingRateError otherwise; nothing is resampled.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace hfport {

enum class ClapTruncation { kFusion, kRandTrunc };
enum class ClapPadding { kRepeatPad, kRepeat, kPad };

struct ClapLogMelOptions {
  int64_t sampling_rate = 0;              // the audio's; must equal feature_sampling_rate
  int64_t feature_sampling_rate = 48000;  // the front end's (ClapFeatureExtractor.sampling_rate)
  int64_t feature_size = 64;              // mel bins
  int64_t fft_window_size = 1024;
  int64_t hop_length = 480;
  int64_t max_length = 480000;            // samples: max_length_s * feature_sampling_rate
  double frequency_min = 0.0;
  double frequency_max = 14000.0;
  ClapTruncation truncation = ClapTruncation::kFusion;
  ClapPadding padding = ClapPadding::kRepeatPad;
};

// What transformers draws with np.random, given by the caller. Rows a draw does not concern are
// not read.
struct ClapDraws {
  Tensor chunk_offsets;       // fusion: I64/I32 [batch, 3], frame offsets of the front, middle and
                              // back chunks of each clip longer than max_length
  Tensor crop_offsets;        // rand_trunc: I64/I32 [batch], sample offset of each long clip's crop
  int64_t longer_index = -1;  // fusion, no clip longer: the clip marked longer (-1: none)
};

struct ClapLogMelResult {
  Tensor input_features;  // F32 [batch, channels, frames, feature_size] (F64 from the reference)
  Tensor is_longer;       // BOOL [batch, 1]
};

ClapLogMelResult clap_log_mel(const Tensor& audio, const Tensor& lengths,
                              const ClapLogMelOptions& options, const ClapDraws& draws = {});

// The same features in float64 straight from the formula: the signals materialised, a direct DFT
// (no FFT, no complex64 rounding), the filters in float64, the shrink in float64. Slow
// (n_fft^2 / 2 multiply-adds a frame): for tests.
ClapLogMelResult clap_log_mel_reference(const Tensor& audio, const Tensor& lengths,
                                        const ClapLogMelOptions& options,
                                        const ClapDraws& draws = {});

// "fusion" / "rand_trunc", "repeatpad" / "repeat" / "pad" (ArgumentError naming the choices).
ClapTruncation clap_truncation_from_name(const std::string& name);
ClapPadding clap_padding_from_name(const std::string& name);

}  // namespace hfport
