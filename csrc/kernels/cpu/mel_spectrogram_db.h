// The power mel spectrogram in decibels on the CPU, on the Params of
// kernels/mel_spectrogram_db_params.h (the formula and the layouts). The entry point is
// hfport::clap_log_mel (ops/clap_log_mel.h).
//
// One pass on hfport's pool (core/parallel.h) over blocks of frames of every row: each block
// gathers its frames (tiling, zero padding and reflection resolved per sample, straight copies
// where a frame lies inside one period of the clip), windows them, takes their real FFT in float64
// (kernels/cpu/fft_real_f64.h, one plan per block: a plan is not shared between threads), rounds
// the spectra to complex64 and squares them, projects the powers onto the filters' nonzero bands
// (kernels/cpu/mel_projection.h: a dense product would be nine tenths multiplications by zero),
// and writes 10 log10(max(., 1e-10)) as F32.
// Precision: float64 throughout, as transformers computes it with numpy; a float32 FFT is not
// enough (docs/decisions.md: the decibels of the quiet bins, 1e-10 of a frame's peak power and
// below, are in the features at full weight, and a float32 FFT's noise floor is far above them).
// No SIMD code of its own: the FFT is hfport's scalar mixed-radix one (fft_real_f64.h).
#pragma once

#include "kernels/mel_spectrogram_db_params.h"

namespace hfport {

// On checked Params: host pointers, every row's length > n_fft / 2.
void mel_spectrogram_db_cpu(const MelSpectrogramDbParams& params);

}  // namespace hfport
