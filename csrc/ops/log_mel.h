// Whisper's log-mel spectrogram: the entry point of the front end transformers'
// WhisperFeatureExtractor computes (kernels/log_mel_params.h has the formula, kernels/cpu/log_mel.h
// the CPU kernel).
//
//   audio [samples] or [batch, samples] (F32, F64, F16 or BF16, any strides; widened or rounded
//   to F32 as the feature extractor casts to float32) -> F32 [batch, feature_size, frames]
//   (a 1-D audio gives batch 1), frames = n_samples / hop_length.
//
// Every row is truncated or zero padded to n_samples (chunk_length * sampling rate: 480000, 30 s at
// 16 kHz, by default), as the feature extractor pads (padding="max_length", truncation=True).
// Rows of one batch share a length; shorter utterances padded with zeros at their end give the
// same features as the feature extractor given them unpadded, because it pads with zeros too.
//
// The window is the periodic Hann window of n_fft samples (np.hanning(n_fft + 1)[:-1], what
// transformers' window_function(n_fft, "hann") and torch.hann_window build); the filters are
// transformers' mel_filter_bank(n_fft / 2 + 1, feature_size, 0 Hz, 8000 Hz, sampling rate,
// norm="slaney", mel_scale="slaney"), computed here in float64 exactly as numpy computes it, then
// rounded to F32 as the feature extractor's torch path rounds it.
//
// The audio's sampling rate must equal the front end's (16 kHz for every Whisper checkpoint):
// hfport never resamples, and a mismatch raises SamplingRateError naming both rates.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/log_mel_params.h"

namespace hfport {

struct LogMelOptions {
  int64_t sampling_rate = 0;              // the audio's; must equal feature_sampling_rate
  int64_t feature_sampling_rate = 16000;  // the front end's (WhisperFeatureExtractor.sampling_rate)
  int64_t feature_size = 80;              // mel bins (num_mel_bins: 80, or 128 for large-v3)
  int64_t n_fft = 400;
  int64_t hop_length = 160;
  int64_t n_samples = 480000;             // chunk_length * feature_sampling_rate
};

Tensor log_mel_spectrogram(const Tensor& audio, const LogMelOptions& options,
                           const Tensor& out = Tensor());

// Float64 reference straight from the formula, with a direct DFT (no FFT) and float64 filters:
// F64 [batch, feature_size, frames]. Slow (n_fft^2 / 2 multiply-adds a frame): for tests.
Tensor log_mel_spectrogram_reference(const Tensor& audio, const LogMelOptions& options);

// The checks both share (the sampling rate, the sizes, the audio's shape and dtype; not the
// device): the problem they describe, as Params without pointers.
LogMelParams check_log_mel_arguments(const Tensor& audio, const LogMelOptions& options);

}  // namespace hfport
