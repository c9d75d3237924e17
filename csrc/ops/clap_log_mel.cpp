// CLAP's front end: checks, each clip's signal and what becomes of its spectrogram (a plan), the
// channel stacking, and the float64 reference; the spectrogram kernel is
// kernels/cpu/mel_spectrogram_db.cpp. See clap_log_mel.h for the computation.
#include "ops/clap_log_mel.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include "core/cast.h"
#include "core/error.h"
#include "kernels/cpu/mel_spectrogram_db.h"
#include "ops/audio_front_end.h"
#include "ops/tensor_arguments.h"

namespace hfport {

namespace {

constexpr const char* kOp = "clap_log_mel";
constexpr int64_t kFusionChannels = 4;   // [shrunk, front, middle, back]
constexpr int64_t kFusionShrinkWidth = 64;  // _random_mel_fusion interpolates to [frames, 64]

// One clip's signal (MelSpectrogramRow's period, extent, length, from sample `start` of its row)
// and what becomes of its spectrogram.
struct ClipPlan {
  int64_t start = 0;
  int64_t period = 0, extent = 0, length = 0;
  bool fused = false;  // fusion of a long clip: three chunks and the shrunk whole
  std::array<int64_t, 3> chunk{};
  bool longer = false;
};

struct Plan {
  Tensor rows;  // [batch, samples], contiguous F32 or F64
  std::vector<ClipPlan> clips;
  int64_t channels = 0, frames = 0, mels = 0;  // of the output
  Tensor filters;                             // F64 [bins, mels]
  std::vector<double> window;
};

std::string text(int64_t v) { return std::to_string(v); }

std::string limit_text(const ClapLogMelOptions& o) {
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g",
                static_cast<double>(o.max_length) / static_cast<double>(o.feature_sampling_rate));
  return "max_length " + text(o.max_length) + " samples (" + seconds + " s at " +
         text(o.feature_sampling_rate) + " Hz)";
}

void check_options(const ClapLogMelOptions& o) {
  require_sampling_rate(kOp, o.sampling_rate, o.feature_sampling_rate);
  if (o.fft_window_size < 2 || o.fft_window_size % 2 != 0 || o.hop_length < 1 ||
      o.feature_size < 1) {
    throw ArgumentError(std::string(kOp) + ": needs an even fft_window_size >= 2, hop_length >= 1 "
                        "and feature_size >= 1, got " + text(o.fft_window_size) + ", " +
                        text(o.hop_length) + " and " + text(o.feature_size));
  }
  if (o.max_length <= o.fft_window_size / 2) {
    throw ArgumentError(std::string(kOp) + ": max_length must exceed fft_window_size / 2 = " +
                        text(o.fft_window_size / 2) + " samples (the centring reflection), got " +
                        text(o.max_length));
  }
}

// Row b's chunk offsets, checked against the starts the spectrogram allows.
std::array<int64_t, 3> chunk_offsets_of(const std::vector<int64_t>& all, int64_t b,
                                        int64_t length, int64_t total, int64_t chunk) {
  std::array<int64_t, 3> out{};
  for (int64_t k = 0; k < 3; ++k) {
    out[k] = all[static_cast<size_t>(b * 3 + k)];
    if (out[k] < 0 || out[k] > total - chunk) {
      throw ArgumentError(std::string(kOp) + ": chunk_offsets[" + text(b) + ", " + text(k) +
                          "] is " + text(out[k]) + ", but clip " + text(b) + " (" + text(length) +
                          " samples) has " + text(total) + " frames, so a chunk of " +
                          text(chunk) + " frames starts at 0 to " + text(total - chunk));
    }
  }
  return out;
}

ClipPlan plan_clip(const ClapLogMelOptions& o, const ClapDraws& draws,
                   const std::vector<int64_t>& chunk_offsets,
                   const std::vector<int64_t>& crop_offsets, int64_t b, int64_t n) {
  ClipPlan c;
  const int64_t max_length = o.max_length;
  c.period = c.extent = c.length = std::min(n, max_length);
  if (n < max_length) {
    c.length = max_length;
    if (o.padding == ClapPadding::kRepeatPad) c.extent = n * (max_length / n);
    if (o.padding == ClapPadding::kRepeat) c.extent = max_length;
    return c;
  }
  if (n == max_length) return c;
  const std::string longer = "clip " + text(b) + " has " + text(n) +
                             " samples, longer than " + limit_text(o) + "; ";
  if (o.truncation == ClapTruncation::kRandTrunc) {
    if (!draws.crop_offsets.defined()) {
      throw ArgumentError(std::string(kOp) + ": " + longer + "transformers crops it at random "
                          "(np.random.randint(0, " + text(n - max_length + 1) + ")): pass "
                          "crop_offsets [batch] (the crop's first sample) or shorten the clip");
    }
    c.start = crop_offsets[static_cast<size_t>(b)];
    if (c.start < 0 || c.start > n - max_length) {
      throw ArgumentError(std::string(kOp) + ": crop_offsets[" + text(b) + "] is " +
                          text(c.start) + ", but " + longer + "a crop starts at 0 to " +
                          text(n - max_length));
    }
    c.longer = true;
    return c;
  }
  // fusion: the whole clip's spectrogram
  c.period = c.extent = c.length = n;
  const int64_t total = mel_spectrogram_frames(n, o.hop_length);
  const int64_t chunk = mel_spectrogram_frames(max_length, o.hop_length);
  if (total == chunk) return c;  // longer by less than a hop: the whole, 4 times, not longer
  if (!draws.chunk_offsets.defined()) {
    throw ArgumentError(std::string(kOp) + ": " + longer + "transformers fuses three chunks "
                        "of it chosen at random (np.random.choice): pass chunk_offsets [batch, 3] "
                        "(each chunk's first frame, 0 to " + text(total - chunk) +
                        ") or shorten the clip");
  }
  if (o.feature_size != kFusionShrinkWidth) {
    throw ArgumentError(std::string(kOp) + ": fusing a clip longer than max_length needs "
                        "feature_size 64 (transformers' _random_mel_fusion shrinks the whole "
                        "spectrogram to 64 mel bins), got " + text(o.feature_size));
  }
  c.chunk = chunk_offsets_of(chunk_offsets, b, n, total, chunk);
  c.fused = c.longer = true;
  return c;
}

// Every check, and each clip's plan. The audio is viewed as [batch, samples] F32 or F64 rows,
// copied (widened exactly) only when it is another dtype or not contiguous.
Plan make_plan(const Tensor& audio, const Tensor& lengths, const ClapLogMelOptions& o,
               const ClapDraws& draws) {
  check_options(o);
  require_mono_audio(kOp, audio);
  require_host_device(kOp, op_device(kOp, {{"audio", &audio}, {"lengths", &lengths}}));
  const DType dt = audio.dtype();
  Plan plan;
  const Tensor rows = audio.ndim() == 2 ? audio.contiguous()
                                         : audio.contiguous().view({1, audio.shape()[0]});
  plan.rows = dt == DType::F32 || dt == DType::F64 ? rows : cast(rows, DType::F64);
  const int64_t batch = rows.shape()[0], samples = rows.shape()[1];
  const std::vector<int64_t> length =
      lengths.defined() ? read_index_values(kOp, "lengths", lengths, {batch}, "[batch]")
                        : std::vector<int64_t>(static_cast<size_t>(batch), samples);
  const bool fusion = o.truncation == ClapTruncation::kFusion;
  std::vector<int64_t> chunk_offsets, crop_offsets;
  if (draws.chunk_offsets.defined()) {
    if (!fusion) {
      throw ArgumentError(std::string(kOp) + ": chunk_offsets are fusion's draws; truncation "
                          "rand_trunc takes crop_offsets");
    }
    chunk_offsets = read_index_values(kOp, "chunk_offsets", draws.chunk_offsets, {batch, 3},
                                      "[batch, 3]");
  }
  if (draws.crop_offsets.defined()) {
    if (fusion) {
      throw ArgumentError(std::string(kOp) + ": crop_offsets are rand_trunc's draws; truncation "
                          "fusion takes chunk_offsets");
    }
    crop_offsets = read_index_values(kOp, "crop_offsets", draws.crop_offsets, {batch}, "[batch]");
  }
  bool any_longer = false;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t n = length[static_cast<size_t>(b)];
    if (n < 1 || n > samples) {
      throw ArgumentError(std::string(kOp) + ": clip " + text(b) + " has " + text(n) +
                          " samples of audio; it needs at least 1 and at most the " +
                          text(samples) + " its row holds");
    }
    plan.clips.push_back(plan_clip(o, draws, chunk_offsets, crop_offsets, b, n));
    any_longer = any_longer || plan.clips.back().longer;
  }
  if (draws.longer_index >= 0) {
    if (!fusion || any_longer || draws.longer_index >= batch) {
      throw ArgumentError(std::string(kOp) + ": longer_index " + text(draws.longer_index) +
                          " marks a clip of a fusion batch in which no clip is longer than "
                          "max_length (transformers' draw np.random.randint(0, batch)); this "
                          "call has truncation " + (fusion ? "fusion" : "rand_trunc") +
                          ", batch " + text(batch) + (any_longer ? " and a longer clip" : ""));
    }
    plan.clips[static_cast<size_t>(draws.longer_index)].longer = true;
  }
  plan.channels = fusion ? kFusionChannels : 1;
  plan.frames = mel_spectrogram_frames(o.max_length, o.hop_length);
  plan.mels = o.feature_size;
  MelFilterBankSpec spec;
  spec.num_frequency_bins = o.fft_window_size / 2 + 1;
  spec.num_mel_filters = o.feature_size;
  spec.min_frequency = o.frequency_min;
  spec.max_frequency = o.frequency_max;
  spec.sampling_rate = o.feature_sampling_rate;
  spec.slaney_norm = !fusion;  // the extractor's mel_filters_slaney outside fusion
  spec.mel_scale = fusion ? MelScale::kHtk : MelScale::kSlaney;
  plan.filters = mel_filter_bank(spec);
  plan.window = hann_window_periodic(o.fft_window_size);
  return plan;
}

// torch.nn.functional.interpolate(mel[None, None], size=[chunk, mels], mode="bilinear",
// align_corners=False) along the frames (the width is unchanged: weights 1 and 0), in T's
// arithmetic as torch computes it for that dtype.
template <typename T>
void shrink_frames(const T* mel, int64_t total, int64_t mels, int64_t chunk, T* out) {
  const T scale = static_cast<T>(total) / static_cast<T>(chunk);
  for (int64_t i = 0; i < chunk; ++i) {
    const T source = std::max(scale * (static_cast<T>(i) + T(0.5)) - T(0.5), T(0));
    const int64_t h0 = std::min(static_cast<int64_t>(std::floor(source)), total - 1);
    const int64_t h1 = h0 < total - 1 ? h0 + 1 : h0;
    const T lambda1 = std::min(std::max(source - static_cast<T>(h0), T(0)), T(1));
    const T lambda0 = T(1) - lambda1;
    for (int64_t m = 0; m < mels; ++m) {
      out[i * mels + m] = lambda0 * mel[h0 * mels + m] + lambda1 * mel[h1 * mels + m];
    }
  }
}

// Clip b's channels of the output from its spectrogram `mel` ([frames of its signal, mels]; for a
// clip that is not fused, it may already be channel 0 of `out`).
template <typename T>
void stack_channels(const Plan& plan, const ClipPlan& c, const T* mel, int64_t hop, T* out) {
  const int64_t frames = plan.frames, mels = plan.mels, channel = frames * mels;
  if (c.fused) {
    shrink_frames(mel, mel_spectrogram_frames(c.length, hop), mels, frames, out);
    for (int64_t k = 0; k < 3; ++k) {
      std::copy_n(mel + c.chunk[static_cast<size_t>(k)] * mels, channel, out + (k + 1) * channel);
    }
    return;
  }
  if (mel != out) std::copy_n(mel, channel, out);
  for (int64_t k = 1; k < plan.channels; ++k) std::copy_n(out, channel, out + k * channel);
}

Tensor is_longer_tensor(const Plan& plan) {
  Tensor t = Tensor::empty(DType::BOOL, {static_cast<int64_t>(plan.clips.size()), 1});
  for (size_t b = 0; b < plan.clips.size(); ++b) t.data_as<uint8_t>()[b] = plan.clips[b].longer;
  return t;
}

}  // namespace

ClapTruncation clap_truncation_from_name(const std::string& name) {
  if (name == "fusion") return ClapTruncation::kFusion;
  if (name == "rand_trunc") return ClapTruncation::kRandTrunc;
  throw ArgumentError(std::string(kOp) + ": truncation must be \"fusion\" or \"rand_trunc\", got \"" +
                      name + "\"");
}

ClapPadding clap_padding_from_name(const std::string& name) {
  if (name == "repeatpad") return ClapPadding::kRepeatPad;
  if (name == "repeat") return ClapPadding::kRepeat;
  if (name == "pad") return ClapPadding::kPad;
  throw ArgumentError(std::string(kOp) + ": padding must be \"repeatpad\", \"repeat\" or \"pad\", "
                      "got \"" + name + "\"");
}

ClapLogMelResult clap_log_mel(const Tensor& audio, const Tensor& lengths,
                              const ClapLogMelOptions& o, const ClapDraws& draws) {
  const Plan plan = make_plan(audio, lengths, o, draws);
  const int64_t batch = plan.rows.shape()[0], samples = plan.rows.shape()[1];
  const int64_t clip_bytes = plan.rows.dtype() == DType::F64 ? 8 : 4;
  const int64_t per_clip = plan.channels * plan.frames * plan.mels;
  Tensor features = Tensor::empty(DType::F32, {batch, plan.channels, plan.frames, plan.mels});
  float* out = features.data_as<float>();
  // A fused clip's whole spectrogram goes to a buffer of its own; the others straight to channel 0.
  std::vector<std::vector<float>> whole(static_cast<size_t>(batch));
  std::vector<MelSpectrogramRow> rows(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    const ClipPlan& c = plan.clips[static_cast<size_t>(b)];
    MelSpectrogramRow& r = rows[static_cast<size_t>(b)];
    r.clip = plan.rows.data() + (b * samples + c.start) * clip_bytes;
    r.period = c.period;
    r.extent = c.extent;
    r.length = c.length;
    if (c.fused) {
      whole[b].resize(static_cast<size_t>(mel_spectrogram_frames(c.length, o.hop_length) * plan.mels));
      r.out = whole[b].data();
    } else {
      r.out = out + b * per_clip;
    }
  }
  MelSpectrogramDbParams p;
  p.row_count = batch;
  p.rows = rows.data();
  p.clip_f64 = plan.rows.dtype() == DType::F64;
  p.n_fft = o.fft_window_size;
  p.hop = o.hop_length;
  p.bins = o.fft_window_size / 2 + 1;
  p.mels = plan.mels;
  p.window = plan.window.data();
  p.filters = plan.filters.data_as<double>();
  mel_spectrogram_db_cpu(p);
  for (int64_t b = 0; b < batch; ++b) {
    stack_channels<float>(plan, plan.clips[static_cast<size_t>(b)], rows[b].out, o.hop_length,
                          out + b * per_clip);
  }
  return {features, is_longer_tensor(plan)};
}

ClapLogMelResult clap_log_mel_reference(const Tensor& audio, const Tensor& lengths,
                                        const ClapLogMelOptions& o, const ClapDraws& draws) {
  const Plan plan = make_plan(audio, lengths, o, draws);
  const Tensor rows = cast(plan.rows, DType::F64);
  const int64_t batch = rows.shape()[0], samples = rows.shape()[1];
  const int64_t n_fft = o.fft_window_size, bins = n_fft / 2 + 1, mels = plan.mels;
  const int64_t per_clip = plan.channels * plan.frames * mels;
  const double* filters = plan.filters.data_as<double>();
  Tensor features = Tensor::empty(DType::F64, {batch, plan.channels, plan.frames, mels});
  std::vector<double> cosines(static_cast<size_t>(n_fft)), sines(cosines.size());
  for (int64_t n = 0; n < n_fft; ++n) {
    const double angle = 2.0 * std::numbers::pi * static_cast<double>(n) / static_cast<double>(n_fft);
    cosines[static_cast<size_t>(n)] = std::cos(angle);
    sines[static_cast<size_t>(n)] = std::sin(angle);
  }
  std::vector<double> frame(static_cast<size_t>(n_fft)), power(static_cast<size_t>(bins));
  for (int64_t b = 0; b < batch; ++b) {
    const ClipPlan& c = plan.clips[static_cast<size_t>(b)];
    // The signal as numpy builds it (np.tile, np.pad), then np.pad(..., n_fft / 2, "reflect").
    const double* clip = rows.data_as<double>() + b * samples + c.start;
    std::vector<double> x(static_cast<size_t>(c.length), 0.0);
    for (int64_t i = 0; i < c.extent; ++i) x[static_cast<size_t>(i)] = clip[i % c.period];
    const int64_t half = n_fft / 2;
    std::vector<double> padded(static_cast<size_t>(c.length + n_fft));
    for (int64_t i = 0; i < c.length + n_fft; ++i) {
      const int64_t at = i - half;
      padded[static_cast<size_t>(i)] =
          x[static_cast<size_t>(at < 0 ? -at : at >= c.length ? 2 * (c.length - 1) - at : at)];
    }
    const int64_t frames = mel_spectrogram_frames(c.length, o.hop_length);
    std::vector<double> mel(static_cast<size_t>(frames * mels));
    for (int64_t t = 0; t < frames; ++t) {
      for (int64_t j = 0; j < n_fft; ++j) {
        frame[static_cast<size_t>(j)] =
            padded[static_cast<size_t>(t * o.hop_length + j)] * plan.window[static_cast<size_t>(j)];
      }
      for (int64_t k = 0; k < bins; ++k) {
        double re = 0.0, im = 0.0;
        for (int64_t n = 0; n < n_fft; ++n) {
          const size_t phase = static_cast<size_t>((k * n) % n_fft);
          re += frame[static_cast<size_t>(n)] * cosines[phase];
          im -= frame[static_cast<size_t>(n)] * sines[phase];
        }
        power[static_cast<size_t>(k)] = re * re + im * im;
      }
      for (int64_t m = 0; m < mels; ++m) {
        double sum = 0.0;
        for (int64_t k = 0; k < bins; ++k) sum += filters[k * mels + m] * power[static_cast<size_t>(k)];
        mel[static_cast<size_t>(t * mels + m)] = 10.0 * std::log10(std::max(sum, 1e-10));
      }
    }
    stack_channels<double>(plan, c, mel.data(), o.hop_length,
                           features.data_as<double>() + b * per_clip);
  }
  return {features, is_longer_tensor(plan)};
}

}  // namespace hfport
