// The kernels' view of one log-mel spectrogram as Whisper's front end computes it (transformers'
// WhisperFeatureExtractor). The entry point (ops/log_mel.h) fills it after every check; the CPU
// kernel is kernels/cpu/log_mel.h.
//
// For each row b of audio, with x the row truncated or zero padded to n_samples samples:
//   frame t (t < frames = n_samples / hop) reads x[t * hop - n_fft / 2 + j], j < n_fft, where an
//     index below 0 or past n_samples - 1 is reflected (numpy's and torch's "reflect" padding of
//     the centred STFT: x[-i] = x[i], x[n_samples - 1 + i] = x[n_samples - 1 - i])
//   power[t, k] = |rfft(window * frame t)[k]|^2,  k < bins = n_fft / 2 + 1
//   mel[m, t]   = sum_k filters[m, k] power[t, k]
//   log[m, t]   = log10(max(mel[m, t], 1e-10))
//   out[b, m, t] = (max(log[m, t], max over the row's m, t of log - 8) + 4) / 4
// The STFT of the padded x has frames + 1 frames; the last is dropped, as the feature extractor
// drops it. The dynamic-range clamp is per row (each utterance its own maximum).
//
// Layout: audio F32 [batch, samples] with element strides; window [n_fft] and filters
// [mels, bins] contiguous F32; out a contiguous F32 [batch, mels, frames]. Requires
// n_samples > n_fft / 2 (reflection needs that many samples) and frames >= 1.
#pragma once

#include <cstdint>

namespace hfport {

struct LogMelParams {
  int64_t batch = 0;
  int64_t samples = 0;      // the audio rows' length before padding or truncation
  int64_t n_samples = 0;    // the length every row is padded or truncated to
  int64_t n_fft = 0, hop = 0;
  int64_t frames = 0;       // n_samples / hop
  int64_t bins = 0;         // n_fft / 2 + 1
  int64_t mels = 0;
  const float* audio = nullptr;  // [batch, samples]
  int64_t audio_batch_stride = 0, audio_sample_stride = 1;
  const float* window = nullptr;   // [n_fft]
  const float* filters = nullptr;  // [mels, bins]
  float* out = nullptr;            // [batch, mels, frames]; no overlap with the inputs
};

}  // namespace hfport
