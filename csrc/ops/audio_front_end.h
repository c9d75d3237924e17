// What the audio front ends (log_mel_spectrogram, fbank, clap_log_mel) share: the sampling-rate
// rule, the periodic Hann window and transformers' mel filter banks, each computed in float64 step
// for step as transformers.audio_utils computes it with numpy, so that one copy serves every
// feature extractor the project matches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hfport {

// The audio's sampling rate must equal the front end's: hfport never resamples. SamplingRateError
// naming the op and both rates otherwise.
void require_sampling_rate(const char* op, int64_t audio_rate, int64_t front_end_rate);

// The audio argument of a front end: defined, F32, F64, F16 or BF16, [samples] or
// [batch, samples] (mono); ArgumentError naming `op` and what was found otherwise.
void require_mono_audio(const char* op, const Tensor& audio);

// np.linspace(start, stop, count): start + i * step, the last value exactly stop.
std::vector<double> linspace(double start, double stop, int64_t count);

// The periodic Hann window of n samples, transformers' window_function(n, "hann"):
// np.hanning(n + 1)[:-1] = 0.5 + 0.5 cos(pi k / n) for k = -n, -n + 2, ..., n - 2 (numpy's own
// form of 0.5 - 0.5 cos(2 pi j / n)), as torch.hann_window(n) builds it too.
std::vector<double> hann_window_periodic(int64_t n);

// transformers.audio_utils.mel_filter_bank's arguments; the defaults are its defaults.
enum class MelScale { kHtk, kKaldi, kSlaney };
struct MelFilterBankSpec {
  int64_t num_frequency_bins = 0;  // n_fft / 2 + 1
  int64_t num_mel_filters = 0;
  double min_frequency = 0.0;
  double max_frequency = 0.0;
  int64_t sampling_rate = 0;
  bool slaney_norm = false;        // norm="slaney" (area normalisation); false: norm=None
  MelScale mel_scale = MelScale::kHtk;
  bool triangularize_in_mel_space = false;
};

// "htk", "kaldi" or "slaney" (ArgumentError naming `op` and the three otherwise).
MelScale mel_scale_from_name(const char* op, const std::string& name);

// transformers.audio_utils.mel_filter_bank(...) in float64: F64 [num_frequency_bins,
// num_mel_filters]. Whisper's front end uses norm="slaney", mel_scale="slaney"; SeamlessM4T's
// (fbank) mel_scale="kaldi" triangularised in mel space; CLAP's mel_scale="htk" without norm
// (truncation "fusion") or Slaney's (other truncations). ArgumentError on sizes transformers
// refuses (bins < 2, min_frequency > max_frequency) and on mels < 1 or a rate < 1.
Tensor mel_filter_bank(const MelFilterBankSpec& spec);

}  // namespace hfport
