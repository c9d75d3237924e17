// Whisper's log-mel spectrogram on the CPU, on the Params of kernels/log_mel_params.h (the
// formula and the layouts). The entry point is hfport::log_mel_spectrogram (ops/log_mel.h).
//
// Two passes on hfport's pool (core/parallel.h):
//   1. over blocks of frames of every row: each block gathers its frames (reflection and zero
//      padding resolved per sample), windows them, takes their real FFT (kernels/cpu/fft_real.h,
//      one plan per block: a plan is not shared between threads), squares the magnitudes into a
//      [block, bins] F32 buffer, projects it onto the mel filters with one single-threaded
//      cblas_sgemm straight into out's [mels, block] columns, and takes log10(max(., 1e-10))
//   2. per row: its maximum, then the clamp to max - 8 and (x + 4) / 4, over blocks again.
// Precision: the FFT and the powers are F32 (as torch.stft's in the feature extractor's torch
// path), the filter product accumulates in F32 over 201 bins, the log in F32.
// No SIMD code of its own: the FFT is hfport's scalar mixed-radix one (fft_complex.h), the
// product OpenBLAS's.
#pragma once

#include "kernels/log_mel_params.h"

namespace hfport {

// On checked Params: host pointers, n_samples > n_fft / 2, frames >= 1.
void log_mel_cpu(const LogMelParams& params);

}  // namespace hfport
