// hfport.ops for audio models: log_mel_spectrogram (Whisper's front end, as transformers'
// WhisperFeatureExtractor computes it), fbank (Wav2Vec2-BERT's, SeamlessM4TFeatureExtractor),
// clap_log_mel (CLAP's, ClapFeatureExtractor) and mel_filter_bank (transformers.audio_utils').
// The binding views the audio without a copy, releases the GIL and calls the C++ op.
#include <pybind11/stl.h>

#include <optional>
#include <tuple>
#include <string>

#include "core/error.h"
#include "ops/audio_front_end.h"
#include "ops/clap_log_mel.h"
#include "ops/fbank.h"
#include "ops/log_mel.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

Tensor log_mel_binding(const DLPackArg& audio, int64_t sampling_rate, int64_t feature_size,
                       int64_t n_fft, int64_t hop_length, int64_t chunk_length,
                       std::optional<int64_t> n_samples, int64_t feature_sampling_rate,
                       const DLPackArg& out) {
  const Tensor audio_t = tensor_arg(audio, "audio");
  const Tensor out_t = optional_tensor_arg(out, "out");
  if (chunk_length < 1) {
    throw ArgumentError("log_mel_spectrogram: chunk_length must be >= 1 (seconds), got " +
                        std::to_string(chunk_length));
  }
  LogMelOptions options;
  options.sampling_rate = sampling_rate;
  options.feature_sampling_rate = feature_sampling_rate;
  options.feature_size = feature_size;
  options.n_fft = n_fft;
  options.hop_length = hop_length;
  options.n_samples = n_samples.value_or(chunk_length * feature_sampling_rate);
  py::gil_scoped_release release;
  return log_mel_spectrogram(audio_t, options, out_t);
}

FbankOptions fbank_options(int64_t sampling_rate, int64_t num_mel_bins, int64_t stride,
                           bool normalize, int64_t feature_sampling_rate) {
  FbankOptions options;
  options.sampling_rate = sampling_rate;
  options.num_mel_bins = num_mel_bins;
  options.stride = stride;
  options.normalize = normalize;
  options.feature_sampling_rate = feature_sampling_rate;
  return options;
}

using ClapOp = ClapLogMelResult (*)(const Tensor&, const Tensor&, const ClapLogMelOptions&,
                                     const ClapDraws&);

// clap_log_mel and its float64 reference, bound alike.
template <ClapOp Op>
std::tuple<Tensor, Tensor> clap_binding(
    const DLPackArg& audio, int64_t sampling_rate, const DLPackArg& lengths,
    const std::string& truncation, const std::string& padding, const DLPackArg& chunk_offsets,
    const DLPackArg& crop_offsets, std::optional<int64_t> longer_index, int64_t feature_size,
    int64_t fft_window_size, int64_t hop_length, int64_t max_length_s,
    std::optional<int64_t> max_length, double frequency_min, double frequency_max,
    int64_t feature_sampling_rate) {
  const Tensor audio_t = tensor_arg(audio, "audio");
  const Tensor lengths_t = optional_tensor_arg(lengths, "lengths");
  ClapLogMelOptions o;
  o.sampling_rate = sampling_rate;
  o.feature_sampling_rate = feature_sampling_rate;
  o.feature_size = feature_size;
  o.fft_window_size = fft_window_size;
  o.hop_length = hop_length;
  o.max_length = max_length.value_or(max_length_s * feature_sampling_rate);
  o.frequency_min = frequency_min;
  o.frequency_max = frequency_max;
  o.truncation = clap_truncation_from_name(truncation);
  o.padding = clap_padding_from_name(padding);
  ClapDraws draws;
  draws.chunk_offsets = optional_tensor_arg(chunk_offsets, "chunk_offsets");
  draws.crop_offsets = optional_tensor_arg(crop_offsets, "crop_offsets");
  if (longer_index.has_value() && *longer_index < 0) {
    throw ArgumentError("clap_log_mel: longer_index must be a clip's index (>= 0) or None, got " +
                        std::to_string(*longer_index));
  }
  draws.longer_index = longer_index.value_or(-1);
  ClapLogMelResult result;
  {
    py::gil_scoped_release release;
    result = Op(audio_t, lengths_t, o, draws);
  }
  return {result.input_features, result.is_longer};
}

}  // namespace

void bind_audio_ops(py::module_& ops) {
  ops.def("fbank",
          [](const DLPackArg& audio, int64_t sampling_rate, const DLPackArg& lengths,
             int64_t num_mel_bins, int64_t stride, bool normalize, int64_t feature_sampling_rate) {
            const Tensor audio_t = tensor_arg(audio, "audio");
            const Tensor lengths_t = optional_tensor_arg(lengths, "lengths");
            const FbankOptions options =
                fbank_options(sampling_rate, num_mel_bins, stride, normalize, feature_sampling_rate);
            FbankResult result;
            {
              py::gil_scoped_release release;
              result = fbank(audio_t, lengths_t, options);
            }
            return py::make_tuple(result.input_features, result.attention_mask);
          },
          py::arg("audio"), py::kw_only(), py::arg("sampling_rate"),
          py::arg("lengths") = py::none(), py::arg("num_mel_bins") = 80, py::arg("stride") = 2,
          py::arg("normalize") = true, py::arg("feature_sampling_rate") = 16000,
          "Wav2Vec2-BERT's Kaldi-style filter banks, as transformers' "
          "SeamlessM4TFeatureExtractor computes them: audio [samples] or [batch, samples] at "
          "sampling_rate Hz (must equal feature_sampling_rate, 16000: SamplingRateError "
          "otherwise), lengths [batch] the samples of each row that are audio (default: all). "
          "Returns (input_features F32 [batch, frames / stride, num_mel_bins * stride], "
          "attention_mask I64 [batch, frames / stride]). CPU, multithreaded.");
  ops.def("_fbank_frames_reference",
          [](const DLPackArg& audio, int64_t sampling_rate, int64_t num_mel_bins) {
            FbankOptions options;
            options.sampling_rate = sampling_rate;
            options.num_mel_bins = num_mel_bins;
            const Tensor audio_t = tensor_arg(audio, "audio");
            py::gil_scoped_release release;
            return fbank_frames_reference(audio_t, options);
          },
          py::arg("audio"), py::kw_only(), py::arg("sampling_rate"), py::arg("num_mel_bins") = 80,
          "float64 log-mel frames of one utterance before normalisation and stacking (direct "
          "DFT), F64 [frames, num_mel_bins]; for tests");
  ops.def("log_mel_spectrogram", &log_mel_binding, py::arg("audio"), py::kw_only(),
          py::arg("sampling_rate"), py::arg("feature_size") = 80, py::arg("n_fft") = 400,
          py::arg("hop_length") = 160, py::arg("chunk_length") = 30,
          py::arg("n_samples") = py::none(), py::arg("feature_sampling_rate") = 16000,
          py::arg("out") = py::none(),
          "Whisper's log-mel features, as transformers' WhisperFeatureExtractor computes them: "
          "audio [samples] or [batch, samples] (F32/F64/F16/BF16, any strides) sampled at "
          "sampling_rate Hz (must equal feature_sampling_rate, 16000: SamplingRateError "
          "otherwise, nothing is resampled), each row truncated or zero padded to n_samples "
          "(default chunk_length * feature_sampling_rate), centred STFT (n_fft, hop_length, "
          "periodic Hann, reflect padding), power, Slaney mel filters (feature_size bins, "
          "0-8000 Hz), log10 of max(., 1e-10), clamp to the row's max - 8, (x + 4) / 4. Returns "
          "F32 [batch, feature_size, n_samples // hop_length]. CPU, multithreaded.");
  ops.def("mel_filter_bank",
          [](int64_t num_frequency_bins, int64_t num_mel_filters, double min_frequency,
             double max_frequency, int64_t sampling_rate, std::optional<std::string> norm,
             const std::string& mel_scale, bool triangularize_in_mel_space) {
            if (norm.has_value() && *norm != "slaney") {
              throw ArgumentError("mel_filter_bank: norm must be \"slaney\" or None, got \"" +
                                  *norm + "\"");
            }
            MelFilterBankSpec spec;
            spec.num_frequency_bins = num_frequency_bins;
            spec.num_mel_filters = num_mel_filters;
            spec.min_frequency = min_frequency;
            spec.max_frequency = max_frequency;
            spec.sampling_rate = sampling_rate;
            spec.slaney_norm = norm.has_value();
            spec.mel_scale = mel_scale_from_name("mel_filter_bank", mel_scale);
            spec.triangularize_in_mel_space = triangularize_in_mel_space;
            return mel_filter_bank(spec);
          },
          py::arg("num_frequency_bins"), py::arg("num_mel_filters"), py::arg("min_frequency"),
          py::arg("max_frequency"), py::arg("sampling_rate"), py::kw_only(),
          py::arg("norm") = "slaney", py::arg("mel_scale") = "slaney",
          py::arg("triangularize_in_mel_space") = false,
          "transformers.audio_utils.mel_filter_bank(...) in float64: F64 [num_frequency_bins, "
          "num_mel_filters]. norm 'slaney' or None, mel_scale 'htk', 'kaldi' or 'slaney'; the "
          "defaults here are Whisper's (norm='slaney', mel_scale='slaney'), not transformers' "
          "(None, 'htk').");
  const auto clap_arguments = [] {
    return std::make_tuple(
        py::arg("audio"), py::kw_only(), py::arg("sampling_rate"),
        py::arg("lengths") = py::none(), py::arg("truncation") = "fusion",
        py::arg("padding") = "repeatpad", py::arg("chunk_offsets") = py::none(),
        py::arg("crop_offsets") = py::none(), py::arg("longer_index") = py::none(),
        py::arg("feature_size") = 64, py::arg("fft_window_size") = 1024,
        py::arg("hop_length") = 480, py::arg("max_length_s") = 10,
        py::arg("max_length") = py::none(), py::arg("frequency_min") = 0.0,
        py::arg("frequency_max") = 14000.0, py::arg("feature_sampling_rate") = 48000);
  };
  std::apply([&](auto&&... args) {
    ops.def("clap_log_mel", &clap_binding<clap_log_mel>,
            args...,
            "CLAP's input features, as transformers' ClapFeatureExtractor computes them: audio "
            "[samples] or [batch, samples] (any float dtype, any strides) at sampling_rate Hz "
            "(must equal feature_sampling_rate, 48000: SamplingRateError otherwise, nothing is "
            "resampled), lengths [batch] the samples of each row that are the clip (default: "
            "all). Each clip shorter than max_length (default max_length_s * "
            "feature_sampling_rate) is padded by `padding` ('repeatpad', 'repeat' or 'pad'); "
            "then a centred STFT (periodic Hann, fft_window_size, hop_length, reflection), "
            "power 2 in float64, mel filters (HTK without norm for truncation 'fusion', Slaney "
            "for 'rand_trunc', as the extractor), 10 log10(max(., 1e-10)). A clip longer than "
            "max_length is cut where transformers draws at random, so the draws are the "
            "caller's: chunk_offsets [batch, 3] (fusion: each chunk's first frame) or "
            "crop_offsets [batch] (rand_trunc: the crop's first sample); without them such a "
            "clip is an ArgumentError. longer_index: the clip a fusion batch with no longer clip "
            "marks as longer (transformers marks a random one; default: none). Returns "
            "(input_features F32 [batch, 4 (fusion) or 1, max_length // hop_length + 1, "
            "feature_size], is_longer BOOL [batch, 1]). CPU, multithreaded.");
    ops.def("_clap_log_mel_reference", &clap_binding<clap_log_mel_reference>,
            args...,
            "the float64 reference of clap_log_mel (direct DFT), F64 features; for tests");
  }, clap_arguments());
  ops.def("_log_mel_spectrogram_reference",
          [](const DLPackArg& audio, int64_t sampling_rate, int64_t feature_size, int64_t n_fft,
             int64_t hop_length, int64_t n_samples) {
            const Tensor audio_t = tensor_arg(audio, "audio");
            LogMelOptions options;
            options.sampling_rate = sampling_rate;
            options.feature_size = feature_size;
            options.n_fft = n_fft;
            options.hop_length = hop_length;
            options.n_samples = n_samples;
            py::gil_scoped_release release;
            return log_mel_spectrogram_reference(audio_t, options);
          },
          py::arg("audio"), py::kw_only(), py::arg("sampling_rate"), py::arg("feature_size"),
          py::arg("n_fft"), py::arg("hop_length"), py::arg("n_samples"),
          "the float64 reference of log_mel_spectrogram (direct DFT), F64; for tests");
}

}  // namespace hfport::python
