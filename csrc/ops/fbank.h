// The Kaldi-style filter-bank front end of Wav2Vec2-BERT and SeamlessM4T, as transformers'
// SeamlessM4TFeatureExtractor computes it:
//
//   per utterance (its own length; rows of `audio` past `lengths[b]` are padding and never read):
//     x = audio * 2^15 (Kaldi's 16-bit scale); frames of 400 samples every 160, no centring
//     (1 + (length - 400) // 160 of them; an utterance shorter than 400 samples is an error)
//     per frame: subtract its mean (remove_dc_offset), pre-emphasis 0.97 (x[n] -= 0.97 x[n-1],
//     x[0] *= 0.03), times the Povey window (np.hanning(400) ** 0.85, symmetric), zero padded to
//     512, |rfft|^2, the Kaldi mel filters (num_mel_bins triangles, 20 Hz to rate / 2, built in mel
//     space as mel_filter_bank(..., mel_scale="kaldi", triangularize_in_mel_space=True) does),
//     log(max(., 1.192092955078125e-07))
//     then (normalize) each mel bin minus its mean over the utterance's frames, over
//     sqrt(its variance (ddof 1) + 1e-7)
//   the batch padded with zero frames to the longest utterance rounded up to a multiple of
//   `stride`, and every `stride` consecutive frames concatenated:
//     input_features [batch, frames / stride, num_mel_bins * stride] F32
//     attention_mask [batch, frames / stride] I64: 1 where the group's second frame is real
//     (the extractor's mask[:, index % stride == 1]; for stride 2 the pair's last frame)
//
// audio: [samples] or [batch, samples], any float dtype, any strides. lengths: I64/I32 [batch]
// (samples of each row that are audio; undefined: all of them). The audio's sampling rate must
// equal the front end's (16 kHz): a mismatch raises SamplingRateError naming both, and nothing is
// ever resampled. Everything is F64 as transformers computes it, the spectra through
// kernels/cpu/fft_real_f64.h and rounded to complex64 as transformers stores them, the features
// rounded to F32 where transformers rounds them. (A float32 FFT is not enough here: the per-bin
// normalisation divides by the bin's spread, small for steady sounds, and a tone plus noise ended
// at rel-L2 1.6e-5 with one; docs/decisions.md.)
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace hfport {

struct FbankOptions {
  int64_t sampling_rate = 0;              // the audio's; must equal feature_sampling_rate
  int64_t feature_sampling_rate = 16000;  // the front end's (SeamlessM4TFeatureExtractor)
  int64_t num_mel_bins = 80;
  int64_t stride = 2;                     // frames stacked into one feature row (>= 2)
  bool normalize = true;                  // do_normalize_per_mel_bins
};

struct FbankResult {
  Tensor input_features;  // F32 [batch, frames / stride, num_mel_bins * stride]
  Tensor attention_mask;  // I64 [batch, frames / stride]
};

FbankResult fbank(const Tensor& audio, const Tensor& lengths, const FbankOptions& options);

// One utterance's log-mel frames before normalisation and stacking, in float64 with a direct DFT
// (no FFT): F64 [frames, num_mel_bins]. For tests; `audio` is [samples].
Tensor fbank_frames_reference(const Tensor& audio, const FbankOptions& options);

}  // namespace hfport
