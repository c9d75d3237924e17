// The kernels' view of a power mel spectrogram in decibels, as transformers.audio_utils.spectrogram
// computes it with power=2.0, center=True, pad_mode="reflect", mel_filters and log_mel="dB"
// (reference 1, min_value 1e-10, no db_range): the features of ClapFeatureExtractor
// (_np_extract_fbank_features). The entry point (ops/clap_log_mel.h) fills it after every check;
// the CPU kernel is kernels/cpu/mel_spectrogram_db.h.
//
// Each row describes a signal x of `length` samples built from a clip without copying it:
//   x[i] = clip[i % period] for i < extent, 0 for extent <= i < length
// (the clip as it is: period = extent = length; tiled, as CLAP's "repeat" and "repeatpad"
// padding tile it: extent a multiple of the period or length; zero padded: extent < length).
// Then, for t < frames = 1 + length / hop:
//   frame t reads x[t * hop - n_fft / 2 + j], j < n_fft, reflected at both ends (numpy's "reflect"
//     padding: x[-i] = x[i], x[length - 1 + i] = x[length - 1 - i])
//   spectrum = rfft(window * frame) in float64, rounded to complex64 as transformers stores it
//   power[k] = re^2 + im^2 of the rounded values, in float64, k < bins = n_fft / 2 + 1
//   mel[m]   = max(1e-10, sum_k filters[k, m] power[k]), float64
//   out[t, m] = float32(10 log10(mel[m]))
//
// Layout: clips contiguous, F32 or F64 (clip_f64); window F64 [n_fft]; filters F64 [bins, mels];
// each row's out a contiguous F32 [frames, mels] (rows may be anywhere, never overlapping each
// other or the inputs). Requires length > n_fft / 2 (one reflection reaches every index), period
// >= 1, extent <= length.
#pragma once

#include <cstdint>

namespace hfport {

struct MelSpectrogramRow {
  const void* clip = nullptr;  // the clip's first sample (F32 or F64: MelSpectrogramDbParams)
  int64_t period = 0;          // samples of the clip that repeat
  int64_t extent = 0;          // samples of x that come from the clip; zeros after them
  int64_t length = 0;          // samples of x (before the centring reflection)
  float* out = nullptr;        // [1 + length / hop, mels]
};

struct MelSpectrogramDbParams {
  int64_t row_count = 0;
  const MelSpectrogramRow* rows = nullptr;
  bool clip_f64 = false;       // the clips' element type: F64, or F32
  int64_t n_fft = 0, hop = 0;
  int64_t bins = 0;            // n_fft / 2 + 1
  int64_t mels = 0;
  const double* window = nullptr;   // [n_fft]
  const double* filters = nullptr;  // [bins, mels]
};

inline int64_t mel_spectrogram_frames(int64_t length, int64_t hop) { return 1 + length / hop; }

}  // namespace hfport
