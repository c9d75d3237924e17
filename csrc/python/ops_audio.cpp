// hfport.ops for audio models: log_mel_spectrogram (Whisper's front end, as transformers'
// WhisperFeatureExtractor computes it) and mel_filter_bank (its Slaney filters). The binding
// views the audio without a copy, releases the GIL and calls the C++ op.
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "core/error.h"
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
             double max_frequency, int64_t sampling_rate) {
            return mel_filter_bank_slaney(num_frequency_bins, num_mel_filters, min_frequency,
                                          max_frequency, sampling_rate);
          },
          py::arg("num_frequency_bins"), py::arg("num_mel_filters"), py::arg("min_frequency"),
          py::arg("max_frequency"), py::arg("sampling_rate"),
          "transformers.audio_utils.mel_filter_bank(..., norm='slaney', mel_scale='slaney') in "
          "float64: F64 [num_frequency_bins, num_mel_filters].");
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
