// The HTSAT Swin audio encoder of CLAP. See htsat.h.
#include "models/htsat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cast.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "core/parallel.h"
#include "models/encoder_layers.h"
#include "models/model_inputs.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/interpolate.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/patch_embed.h"

namespace hfport::models {

namespace {

// Errors name the family the encoder belongs to.
constexpr const char* kFamily = "clap";
// nn.LayerNorm's and nn.BatchNorm2d's default eps: the patch, merge and output norms and every
// batch norm take it whatever layer_norm_eps says (only the blocks' norms read the config).
constexpr double kTorchEps = 1e-5;
// transformers' shifted-window mask value between regions (not -inf).
constexpr float kRegionMask = -100.0f;

[[noreturn]] void config_error(const std::string& what) {
  throw ConfigError(std::string("native ") + kFamily + " model: " + what);
}

int64_t field_int(const nlohmann::json& c, const char* section, const char* key, int64_t fallback) {
  const auto it = c.find(key);
  if (it == c.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    config_error(std::string(section) + "." + key + " must be an integer, got " + it->dump());
  }
  return it->get<int64_t>();
}

// patch_size / patch_stride: an int or a pair.
std::pair<int64_t, int64_t> field_pair(const nlohmann::json& c, const char* key, int64_t fallback) {
  const auto it = c.find(key);
  if (it == c.end() || it->is_null()) return {fallback, fallback};
  if (it->is_number_integer()) return {it->get<int64_t>(), it->get<int64_t>()};
  if (it->is_array() && it->size() == 2 && (*it)[0].is_number_integer() &&
      (*it)[1].is_number_integer()) {
    return {(*it)[0].get<int64_t>(), (*it)[1].get<int64_t>()};
  }
  config_error(std::string("audio_config.") + key + " must be an int or a pair of ints, got " +
               it->dump());
}

std::vector<int64_t> field_list(const nlohmann::json& c, const char* key) {
  const auto it = c.find(key);
  std::vector<int64_t> out;
  if (it == c.end() || !it->is_array() || it->empty()) {
    config_error(std::string("audio_config.") + key + " must be a non-empty list of ints");
  }
  for (const auto& v : *it) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1) {
      config_error(std::string("audio_config.") + key + " must hold ints >= 1, got " + it->dump());
    }
    out.push_back(v.get<int64_t>());
  }
  return out;
}

std::string field_string(const nlohmann::json& c, const char* key, const std::string& fallback) {
  const auto it = c.find(key);
  return it == c.end() || !it->is_string() ? fallback : it->get<std::string>();
}

// Eval-mode batch norm as torch computes it: x * alpha + beta, alpha = w / sqrt(var + eps).
struct BatchNorm {
  std::vector<float> alpha, beta;
  static BatchNorm from(const Parameters& p, const std::string& name) {
    const Tensor w = p.get(name + ".weight").contiguous(), b = p.get(name + ".bias").contiguous();
    const Tensor m = p.get(name + ".running_mean").contiguous();
    const Tensor v = p.get(name + ".running_var").contiguous();
    BatchNorm bn;
    for (int64_t c = 0; c < w.numel(); ++c) {
      const float invstd = 1.0f / std::sqrt(v.data_as<float>()[c] + static_cast<float>(kTorchEps));
      const float a = invstd * w.data_as<float>()[c];
      bn.alpha.push_back(a);
      bn.beta.push_back(b.data_as<float>()[c] - m.data_as<float>()[c] * a);
    }
    return bn;
  }
  // x [..., channels] contiguous, in place.
  void apply(const Tensor& x, bool relu) const {
    const int64_t c = static_cast<int64_t>(alpha.size());
    float* d = x.data_as<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float y = d[i] * alpha[i % c] + beta[i % c];
      d[i] = relu && y < 0.0f ? 0.0f : y;
    }
  }
};

struct SwinBlock {
  Tensor attn_norm_w, attn_norm_b, qkv_w, qkv_b, out_w, out_b;
  Tensor ffn_norm_w, ffn_norm_b, up_w, up_b, down_w, down_b;
  int64_t shift = 0;
  // The additive attention mask: the relative position bias [1, heads, N, N], plus for a shifted
  // block the region mask, [windows, heads, N, N].
  Tensor mask;
};

struct SwinStage {
  int64_t dim = 0, heads = 0, h = 0, w = 0, window = 0, padded_h = 0, padded_w = 0;
  std::vector<SwinBlock> blocks;
  Tensor merge_norm_w, merge_norm_b, merge_w;  // undefined for the last stage
};

struct Fusion {
  Tensor mel_w, mel_b;  // patch_embd_mel
  Tensor local1_w, local1_b, local2_w, local2_b, global1_w, global1_b, global2_w, global2_b;
  BatchNorm local_bn1, local_bn2, global_bn1, global_bn2;
};


// [batch, h * w, c] -> [batch, c, h, w], contiguous (transformers' reshaped hidden states).
Tensor channels_first(const Tensor& x, int64_t h, int64_t w) {
  const int64_t batch = x.shape()[0], c = x.shape()[2];
  return x.transpose(1, 2).contiguous().view({batch, c, h, w});
}

}  // namespace

struct HtsatEncoder::Impl {
  Impl(const nlohmann::json& a, Parameters params) : audio_(std::move(params)) {
    mel_bins_ = field_int(a, "audio_config", "num_mel_bins", 64);
    spec_size_ = field_int(a, "audio_config", "spec_size", 256);
    const auto [patch_h, patch_w] = field_pair(a, "patch_size", 4);
    const auto [stride_h, stride_w] = field_pair(a, "patch_stride", 4);
    if (patch_h != stride_h || patch_w != stride_w || patch_h != patch_w) {
      config_error("audio_config: patch_size must equal patch_stride (square patches without "
                   "overlap); got patch_size " + std::to_string(patch_h) + "x" +
                   std::to_string(patch_w) + ", patch_stride " + std::to_string(stride_h) + "x" +
                   std::to_string(stride_w));
    }
    patch_ = patch_h;
    if (!a.value("flatten_patch_embeds", true)) {
      config_error("audio_config.flatten_patch_embeds false is not supported (transformers' "
                   "encoder needs the flattened sequence too)");
    }
    if (mel_bins_ < 1 || spec_size_ < mel_bins_ || spec_size_ % (spec_size_ / mel_bins_) != 0) {
      config_error("audio_config: spec_size " + std::to_string(spec_size_) + " must be at least "
                   "num_mel_bins " + std::to_string(mel_bins_) + " and a multiple of freq_ratio "
                   "(spec_size // num_mel_bins)");
    }
    freq_ratio_ = spec_size_ / mel_bins_;
    fusion_ = a.value("enable_fusion", false);
    if (fusion_ && field_string(a, "fusion_type", "") == "channel_map") {
      config_error("audio_config.fusion_type 'channel_map' is not supported: transformers' "
                   "ClapAudioPatchEmbed gives its 4-channel patch_embd one channel and fails");
    }
    window_ = field_int(a, "audio_config", "window_size", 8);
    eps_ = a.value("layer_norm_eps", 1e-5);
    act_ = encoder_activation(kFamily, "audio_config.hidden_act",
                              field_string(a, "hidden_act", "gelu"));
    const std::vector<int64_t> depths = field_list(a, "depths");
    const std::vector<int64_t> heads = field_list(a, "num_attention_heads");
    if (heads.size() < depths.size()) {
      config_error("audio_config.num_attention_heads needs one entry per stage (" +
                   std::to_string(depths.size()) + ")");
    }
    const int64_t embed = field_int(a, "audio_config", "patch_embeds_hidden_size", 96);
    grid_h_ = spec_size_ / patch_;
    grid_w_ = spec_size_ / patch_;
    const int64_t n = static_cast<int64_t>(depths.size());
    for (int64_t i = 0; i < n; ++i) {
      SwinStage s;
      s.dim = embed << i;
      s.heads = heads[static_cast<size_t>(i)];
      s.h = grid_h_ >> i;
      s.w = grid_w_ >> i;
      const std::string at = "stage " + std::to_string(i) + " (" + std::to_string(s.h) + "x" +
                             std::to_string(s.w) + ")";
      if (s.h < 1 || s.w < 1 || std::min(s.h, s.w) < window_) {
        config_error("audio_config: " + at + " is smaller than window_size " +
                     std::to_string(window_) + "; transformers' ClapAudioLayer cannot run it "
                     "either (its relative position bias is window_size^2 wide)");
      }
      if (i + 1 < n && ((s.h + 1) / 2 != grid_h_ >> (i + 1) || (s.w + 1) / 2 != grid_w_ >> (i + 1))) {
        config_error("audio_config: " + at + " does not halve into the next stage's resolution; "
                     "transformers' ClapAudioEncoder cannot run it either");
      }
      if (s.dim % s.heads != 0) {
        config_error("audio_config: " + at + " width " + std::to_string(s.dim) +
                     " is not a multiple of its num_attention_heads " + std::to_string(s.heads));
      }
      s.window = window_;
      const bool can_shift = std::min(s.h, s.w) > window_;
      s.padded_h = (s.h + window_ - 1) / window_ * window_;
      s.padded_w = (s.w + window_ - 1) / window_ * window_;
      for (int64_t j = 0; j < depths[static_cast<size_t>(i)]; ++j) {
        const std::string p = "stage." + std::to_string(i) + ".blk." + std::to_string(j) + ".";
        SwinBlock b;
        b.attn_norm_w = audio_.get(p + "attn_norm.weight");
        b.attn_norm_b = audio_.get(p + "attn_norm.bias");
        b.qkv_w = audio_.get(p + "attn_qkv.weight");
        if (const Tensor* bias = audio_.find(p + "attn_qkv.bias")) b.qkv_b = *bias;
        b.out_w = audio_.get(p + "attn_out.weight");
        b.out_b = audio_.get(p + "attn_out.bias");
        b.ffn_norm_w = audio_.get(p + "ffn_norm.weight");
        b.ffn_norm_b = audio_.get(p + "ffn_norm.bias");
        b.up_w = audio_.get(p + "ffn_up.weight");
        b.up_b = audio_.get(p + "ffn_up.bias");
        b.down_w = audio_.get(p + "ffn_down.weight");
        b.down_b = audio_.get(p + "ffn_down.bias");
        b.shift = (j % 2 == 1 && can_shift) ? window_ / 2 : 0;
        b.mask = block_mask(s, b.shift, audio_.get(p + "attn_rel_pos_bias").contiguous());
        s.blocks.push_back(std::move(b));
      }
      if (i + 1 < n) {
        const std::string p = "stage." + std::to_string(i) + ".";
        s.merge_norm_w = audio_.get(p + "merge_norm.weight");
        s.merge_norm_b = audio_.get(p + "merge_norm.bias");
        s.merge_w = audio_.get(p + "merge.weight");
      }
      stages_.push_back(std::move(s));
    }
    // The final grouping (ClapAudioEncoder.forward's freq_shape / temporal_shape).
    const int64_t down = int64_t{1} << (n - 1);
    final_f_ = spec_size_ / down / patch_;
    final_t_ = spec_size_ / down / patch_;
    const SwinStage& last = stages_.back();
    freq_bin_ = final_f_ / freq_ratio_;
    if (final_f_ * final_t_ != last.h * last.w || freq_bin_ < 1 || final_f_ % freq_bin_ != 0) {
      config_error("audio_config: the last stage's " + std::to_string(last.h) + "x" +
                   std::to_string(last.w) + " grid cannot be grouped by freq_ratio " +
                   std::to_string(freq_ratio_) + " as transformers' ClapAudioEncoder groups it");
    }
    const int64_t features = last.dim;
    const int64_t hidden = field_int(a, "audio_config", "hidden_size", 768);
    if (hidden != features) {
      config_error("audio_config.hidden_size " + std::to_string(hidden) + " must equal the last "
                   "stage's width " + std::to_string(features) + " (the projection reads it)");
    }
    patch_w_ = audio_.get("patch_embd.weight").contiguous();
    patch_b_ = audio_.get("patch_embd.bias");
    if (const Tensor* t = audio_.find("patch_embd_norm.weight")) {
      patch_norm_w_ = *t;
      patch_norm_b_ = audio_.get("patch_embd_norm.bias");
    }
    mel_norm_ = BatchNorm::from(audio_, "mel_norm");
    if (fusion_) {
      fusion_parts_.mel_w = audio_.get("patch_embd_mel.weight").contiguous();
      fusion_parts_.mel_b = audio_.get("patch_embd_mel.bias");
      for (auto [w, b, name] : {std::tuple{&fusion_parts_.local1_w, &fusion_parts_.local1_b, "local_conv1"},
                                std::tuple{&fusion_parts_.local2_w, &fusion_parts_.local2_b, "local_conv2"},
                                std::tuple{&fusion_parts_.global1_w, &fusion_parts_.global1_b, "global_conv1"},
                                std::tuple{&fusion_parts_.global2_w, &fusion_parts_.global2_b, "global_conv2"}}) {
        *w = audio_.get(std::string("fusion.") + name + ".weight");
        *b = audio_.get(std::string("fusion.") + name + ".bias");
      }
      fusion_parts_.local_bn1 = BatchNorm::from(audio_, "fusion.local_bn1");
      fusion_parts_.local_bn2 = BatchNorm::from(audio_, "fusion.local_bn2");
      fusion_parts_.global_bn1 = BatchNorm::from(audio_, "fusion.global_bn1");
      fusion_parts_.global_bn2 = BatchNorm::from(audio_, "fusion.global_bn2");
    }
  }

  HtsatOutput forward(const Tensor& input_features, const Tensor& is_longer,
                      bool output_hidden_states) const {
    const Tensor features = checked_features(input_features);
    const int64_t batch = features.shape()[0];
    const std::vector<int64_t> longer = longer_examples(is_longer, batch);
    const Tensor image = mel_image(features);
    HtsatOutput out;
    Tensor x = patch_embedded(image, longer);
    if (output_hidden_states) out.hidden_states.push_back(channels_first(x, grid_h_, grid_w_));
    for (const SwinStage& stage : stages_) {
      for (const SwinBlock& block : stage.blocks) {
        x = swin_block(stage, block, x);
        if (output_hidden_states) out.block_states.push_back(x);
      }
      if (stage.merge_w.defined()) {
        x = patch_merged(stage, x);
        if (output_hidden_states) {
          out.hidden_states.push_back(channels_first(x, (stage.h + 1) / 2, (stage.w + 1) / 2));
        }
      } else if (output_hidden_states) {
        out.hidden_states.push_back(channels_first(x, stage.h, stage.w));
      }
    }
    pool(x, out);
    return out;
  }

  // [1 or windows, heads, N, N] F32: table[relative offset of (i, j), h], plus -100 between
  // tokens of different shift regions (ClapAudioLayer.get_attn_mask) for a shifted block.
  Tensor block_mask(const SwinStage& s, int64_t shift, const Tensor& table) const {
    const int64_t ws = s.window, n = ws * ws, heads = s.heads;
    const int64_t windows_h = s.padded_h / ws, windows_w = s.padded_w / ws;
    const int64_t windows = shift > 0 ? windows_h * windows_w : 1;
    Tensor mask = Tensor::empty(DType::F32, {windows, heads, n, n});
    const float* t = table.data_as<float>();
    float* m = mask.data_as<float>();
    const auto region = [&](int64_t index, int64_t size) {
      return (index >= size - ws ? 1 : 0) + (index >= size - shift ? 1 : 0);
    };
    for (int64_t w = 0; w < windows; ++w) {
      const int64_t wy = w / windows_w, wx = w % windows_w;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t yi = i / ws, xi = i % ws;
        const int64_t ri = region(wy * ws + yi, s.padded_h) * 3 + region(wx * ws + xi, s.padded_w);
        for (int64_t j = 0; j < n; ++j) {
          const int64_t yj = j / ws, xj = j % ws;
          const int64_t rj = region(wy * ws + yj, s.padded_h) * 3 + region(wx * ws + xj, s.padded_w);
          const int64_t offset = (yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1);
          const float add = shift > 0 && ri != rj ? kRegionMask : 0.0f;
          for (int64_t h = 0; h < heads; ++h) {
            m[((w * heads + h) * n + i) * n + j] = t[offset * heads + h] + add;
          }
        }
      }
    }
    return mask;
  }

  Tensor checked_features(const Tensor& t) const {
    const std::string who = std::string("native ") + kFamily + " model: input_features";
    if (!t.defined()) throw ArgumentError(who + " is required");
    const int64_t channels = fusion_ ? 4 : patch_w_.shape()[1];
    const std::string want = "[batch, " + std::to_string(channels) + ", time, " +
                             std::to_string(mel_bins_) + "]";
    if (t.ndim() != 4 || t.shape()[0] < 1 || t.shape()[2] < 1) {
      throw ArgumentError(who + " must be " + want + ", got " + shape_to_string(t.shape()));
    }
    if (t.shape()[3] != mel_bins_) {
      throw ArgumentError(who + " has " + std::to_string(t.shape()[3]) + " mel bins (its last "
                          "dimension), but the model has num_mel_bins " +
                          std::to_string(mel_bins_) + ": expected " + want + ", got " +
                          shape_to_string(t.shape()));
    }
    if (t.shape()[1] != channels) {
      throw ArgumentError(who + " has " + std::to_string(t.shape()[1]) + " channels, but " +
                          (fusion_ ? std::string("a model with enable_fusion reads 4 (the whole "
                                                 "clip, then 3 crops: ClapFeatureExtractor's "
                                                 "truncation='fusion')")
                                   : "the model reads " + std::to_string(channels)) +
                          ": expected " + want + ", got " + shape_to_string(t.shape()));
    }
    if (t.shape()[2] > spec_size_ * freq_ratio_) {
      throw ArgumentError(who + " has " + std::to_string(t.shape()[2]) + " frames, more than "
                          "spec_size * freq_ratio = " + std::to_string(spec_size_ * freq_ratio_) +
                          " (transformers refuses it too)");
    }
    if (!dtype_is_floating(t.dtype())) {
      throw ArgumentError(who + " must be a float tensor, got " + std::string(dtype_name(t.dtype())));
    }
    const Tensor host = t.device().type == DeviceType::CPU ? t : to_device(t, Device{});
    return contiguous_copy(host.dtype() == DType::F32 ? host : cast(host, DType::F32));
  }

  // The examples whose is_longer is 1 (transformers: torch.where(is_longer == 1)).
  std::vector<int64_t> longer_examples(const Tensor& is_longer, int64_t batch) const {
    std::vector<int64_t> longer;
    if (!fusion_) return longer;
    const std::string who = std::string("native ") + kFamily + " model: is_longer";
    if (!is_longer.defined()) {
      throw ArgumentError(who + " is required with enable_fusion (ClapFeatureExtractor returns "
                          "it beside input_features)");
    }
    if (is_longer.numel() != batch ||
        !(is_longer.ndim() == 1 || (is_longer.ndim() == 2 && is_longer.shape()[1] == 1))) {
      throw ArgumentError(who + " must be [batch] or [batch, 1] with batch " +
                          std::to_string(batch) + ", got " + shape_to_string(is_longer.shape()));
    }
    const Tensor host = is_longer.device().type == DeviceType::CPU ? is_longer
                                                                   : to_device(is_longer, Device{});
    const Tensor values = cast(host.contiguous(), DType::F64);
    for (int64_t b = 0; b < batch; ++b) {
      if (values.data_as<double>()[b] == 1.0) longer.push_back(b);
    }
    return longer;
  }

  // mel_norm, then reshape_mel2img: [batch, channels, spec_size, spec_size].
  Tensor mel_image(Tensor x) const {
    const int64_t batch = x.shape()[0], channels = x.shape()[1];
    mel_norm_.apply(x, false);
    const int64_t width = spec_size_ * freq_ratio_, height = spec_size_ / freq_ratio_;
    const int64_t time = x.shape()[2], freq = x.shape()[3];
    if (time < width) x = interpolate_bicubic(x, width, freq, false, Tensor(), true);
    if (freq < height) x = interpolate_bicubic(x, time, height, false, Tensor(), true);
    if (x.shape()[2] != width || x.shape()[3] != height) {
      throw ArgumentError(std::string("native ") + kFamily + " model: input_features of " +
                          std::to_string(time) + " frames and " + std::to_string(freq) +
                          " mel bins cannot be made a " + std::to_string(width) + "x" +
                          std::to_string(height) + " spectrogram as transformers' reshape_mel2img "
                          "resizes it (it resizes the mel axis back to the input's frame count)");
    }
    const int64_t t_slice = width / freq_ratio_;
    Tensor image = Tensor::empty(DType::F32, {batch, channels, height * freq_ratio_, t_slice});
    const float* src = x.data_as<float>();
    float* dst = image.data_as<float>();
    const int64_t rows = batch * channels * freq_ratio_ * height;
    parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t plane = row / (freq_ratio_ * height), r = (row / height) % freq_ratio_;
        const int64_t f = row % height;
        const float* in = src + plane * width * height + r * t_slice * height + f;
        float* o = dst + row * t_slice;
        for (int64_t t = 0; t < t_slice; ++t) o[t] = in[t * height];
      }
    });
    return image;
  }

  // The patch embedding (with the fusion of the longer examples) and its norm: [batch, grid, E].
  Tensor patch_embedded(const Tensor& image, const std::vector<int64_t>& longer) const {
    const int64_t size = image.shape()[2];
    const Tensor global_input = fusion_ ? image.slice(1, 0, 1) : image;
    Tensor x = patch_embed(global_input, patch_w_, patch_b_, PatchSize{patch_, patch_});
    const int64_t grid = grid_h_ * grid_w_, e = x.shape()[2];
    for (const int64_t b : longer) {
      // Channels 1..3 of example b as three one-channel images.
      const Tensor crops(image.storage(),
                         image.byte_offset() + static_cast<size_t>((b * 4 + 1) * size * size) * 4,
                         DType::F32, {3, 1, size, size}, {size * size, size * size, size, 1});
      const Tensor mel = patch_embed(crops, fusion_parts_.mel_w, fusion_parts_.mel_b,
                                     PatchSize{patch_, 3 * patch_});  // [3, grid_h * w3, E]
      const int64_t w3 = mel.shape()[1] / grid_h_;
      Tensor local = Tensor::zeros(DType::F32, {grid, e});
      const float* m = mel.data_as<float>();
      float* l = local.data_as<float>();
      for (int64_t c = 0; c < 3; ++c) {
        for (int64_t gy = 0; gy < grid_h_; ++gy) {
          for (int64_t wx = 0; wx < w3 && c * w3 + wx < grid_w_; ++wx) {
            std::memcpy(l + (gy * grid_w_ + c * w3 + wx) * e, m + ((c * grid_h_ + gy) * w3 + wx) * e,
                        static_cast<size_t>(e) * 4);
          }
        }
      }
      const Tensor g = x.select(0, b);  // [grid, E], a view into x: the fusion writes there
      fuse(g, local);
    }
    if (patch_norm_w_.defined()) x = layer_norm(x, patch_norm_w_, patch_norm_b_, kTorchEps);
    return x;
  }

  // ClapAudioAFFBlock: g = 2 g w + 2 l (1 - w), w = sigmoid(local(g + l) + global(g + l)).
  void fuse(const Tensor& g, const Tensor& l) const {
    const Fusion& f = fusion_parts_;
    const int64_t grid = g.shape()[0], e = g.shape()[1];
    Tensor a = contiguous_copy(g);
    add_inplace(a, l);
    Tensor local = linear(a, f.local1_w, f.local1_b);
    f.local_bn1.apply(local, true);
    local = linear(local, f.local2_w, f.local2_b);
    f.local_bn2.apply(local, false);
    Tensor mean = Tensor::empty(DType::F32, {1, e});
    for (int64_t c = 0; c < e; ++c) {
      double sum = 0.0;
      for (int64_t i = 0; i < grid; ++i) sum += a.data_as<float>()[i * e + c];
      mean.data_as<float>()[c] = static_cast<float>(sum / static_cast<double>(grid));
    }
    Tensor global = linear(mean, f.global1_w, f.global1_b);
    f.global_bn1.apply(global, true);
    global = linear(global, f.global2_w, f.global2_b);
    f.global_bn2.apply(global, false);
    float* gd = g.data_as<float>();
    const float* ld = l.data_as<float>();
    const float* lo = local.data_as<float>();
    const float* gl = global.data_as<float>();
    for (int64_t i = 0; i < grid; ++i) {
      for (int64_t c = 0; c < e; ++c) {
        const float w = 1.0f / (1.0f + std::exp(-(lo[i * e + c] + gl[c])));
        float& out = gd[i * e + c];
        out = 2.0f * out * w + 2.0f * ld[i * e + c] * (1.0f - w);
      }
    }
  }

  // One Swin block (ClapAudioLayer) on x [batch, h * w, dim].
  Tensor swin_block(const SwinStage& s, const SwinBlock& b, const Tensor& x) const {
    const int64_t batch = x.shape()[0], c = s.dim, ws = s.window, n = ws * ws;
    const int64_t windows_w = s.padded_w / ws, windows = (s.padded_h / ws) * windows_w;
    const Tensor normed = layer_norm(x, b.attn_norm_w, b.attn_norm_b, eps_);
    // Window rows: padded, rolled by -shift and partitioned, [batch * windows, N, C].
    Tensor win = Tensor::zeros(DType::F32, {batch * windows, n, c});
    const float* src = normed.data_as<float>();
    float* wd = win.data_as<float>();
    const auto source_of = [&](int64_t row, int64_t& y, int64_t& xx) {
      const int64_t w = (row / n) % windows, i = row % n;
      const int64_t py = (w / windows_w) * ws + i / ws, px = (w % windows_w) * ws + i % ws;
      y = (py + b.shift) % s.padded_h;
      xx = (px + b.shift) % s.padded_w;
    };
    parallel_for(batch * windows * n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        int64_t y = 0, xx = 0;
        source_of(row, y, xx);
        if (y < s.h && xx < s.w) {
          const int64_t bt = row / (windows * n);
          std::memcpy(wd + row * c, src + ((bt * s.h + y) * s.w + xx) * c, static_cast<size_t>(c) * 4);
        }
      }
    });
    const Tensor qkv = linear(win, b.qkv_w, b.qkv_b);  // [batch * windows, N, 3C]
    const int64_t head_dim = c / s.heads;
    AttentionOptions options;
    options.layout = AttentionLayout::BSHD;
    const auto part = [&](int64_t which, int64_t first, int64_t count) {
      return fused_projection_part(qkv, 3, which, s.heads).slice(0, first, first + count);
    };
    Tensor context;
    if (b.mask.shape()[0] == 1) {
      options.attn_mask = b.mask;
      context = attention(part(0, 0, batch * windows), part(1, 0, batch * windows),
                          part(2, 0, batch * windows), options).out;
    } else {
      // The region mask differs window by window: one call per example, windows as its batch.
      context = Tensor::empty(DType::F32, {batch * windows, n, s.heads, head_dim});
      options.attn_mask = b.mask;
      for (int64_t bt = 0; bt < batch; ++bt) {
        const Tensor one = attention(part(0, bt * windows, windows), part(1, bt * windows, windows),
                                     part(2, bt * windows, windows), options).out;
        std::memcpy(context.data_as<float>() + bt * windows * n * c, one.data_as<float>(),
                    static_cast<size_t>(windows * n * c) * 4);
      }
    }
    const Tensor attended = linear(context.view({batch * windows, n, c}), b.out_w, b.out_b);
    // Back from windows (reverse, roll by +shift, crop) onto the residual.
    Tensor h = contiguous_copy(x);
    const float* ad = attended.data_as<float>();
    float* hd = h.data_as<float>();
    parallel_for(batch * windows * n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        int64_t y = 0, xx = 0;
        source_of(row, y, xx);
        if (y < s.h && xx < s.w) {
          const int64_t bt = row / (windows * n);
          float* o = hd + ((bt * s.h + y) * s.w + xx) * c;
          const float* a = ad + row * c;
          for (int64_t k = 0; k < c; ++k) o[k] += a[k];
        }
      }
    });
    Tensor f = linear(gelu(linear(layer_norm(h, b.ffn_norm_w, b.ffn_norm_b, eps_), b.up_w, b.up_b),
                           act_),
                      b.down_w, b.down_b);
    add_inplace(f, h);
    return f;
  }

  // ClapAudioPatchMerging: [batch, h * w, C] -> [batch, ceil(h/2) * ceil(w/2), 2C].
  Tensor patch_merged(const SwinStage& s, const Tensor& x) const {
    const int64_t batch = x.shape()[0], c = s.dim;
    const int64_t h2 = (s.h + 1) / 2, w2 = (s.w + 1) / 2;
    Tensor cat = Tensor::zeros(DType::F32, {batch, h2 * w2, 4 * c});
    const float* src = x.data_as<float>();
    float* dst = cat.data_as<float>();
    constexpr int64_t kRow[4] = {0, 1, 0, 1}, kCol[4] = {0, 0, 1, 1};
    for (int64_t bt = 0; bt < batch; ++bt) {
      for (int64_t oy = 0; oy < h2; ++oy) {
        for (int64_t ox = 0; ox < w2; ++ox) {
          for (int64_t q = 0; q < 4; ++q) {
            const int64_t y = 2 * oy + kRow[q], xx = 2 * ox + kCol[q];
            if (y >= s.h || xx >= s.w) continue;
            std::memcpy(dst + ((bt * h2 + oy) * w2 + ox) * 4 * c + q * c,
                        src + ((bt * s.h + y) * s.w + xx) * c, static_cast<size_t>(c) * 4);
          }
        }
      }
    }
    return linear(layer_norm(cat, s.merge_norm_w, s.merge_norm_b, kTorchEps), s.merge_w);
  }

  // output_norm, the mean pooling and transformers' grouped last_hidden_state.
  void pool(const Tensor& x, HtsatOutput& out) const {
    const Tensor normed = layer_norm(x, audio_.get("output_norm.weight"),
                                     audio_.get("output_norm.bias"), kTorchEps);
    const int64_t batch = normed.shape()[0], tokens = normed.shape()[1], c = normed.shape()[2];
    const int64_t groups = final_f_ / freq_bin_;
    Tensor last = Tensor::empty(DType::F32, {batch, c, freq_bin_, groups * final_t_});
    Tensor pooled = Tensor::empty(DType::F32, {batch, c});
    const float* nd = normed.data_as<float>();
    float* ld = last.data_as<float>();
    float* pd = pooled.data_as<float>();
    for (int64_t bt = 0; bt < batch; ++bt) {
      for (int64_t ch = 0; ch < c; ++ch) {
        double sum = 0.0;
        for (int64_t k = 0; k < freq_bin_; ++k) {
          for (int64_t r = 0; r < groups; ++r) {
            for (int64_t t = 0; t < final_t_; ++t) {
              const float v = nd[(bt * tokens + (r * freq_bin_ + k) * final_t_ + t) * c + ch];
              ld[((bt * c + ch) * freq_bin_ + k) * groups * final_t_ + r * final_t_ + t] = v;
              sum += v;
            }
          }
        }
        pd[bt * c + ch] = static_cast<float>(sum / static_cast<double>(tokens));
      }
    }
    out.last_hidden_state = last;
    out.pooler_output = pooled;
  }

  int64_t mel_bins_ = 0, spec_size_ = 0, freq_ratio_ = 1, patch_ = 4, window_ = 8;
  int64_t grid_h_ = 0, grid_w_ = 0, final_f_ = 0, final_t_ = 0, freq_bin_ = 1;
  double eps_ = 1e-5;
  GeluApproximation act_ = GeluApproximation::None;
  bool fusion_ = false;
  BatchNorm mel_norm_;
  Tensor patch_w_, patch_b_, patch_norm_w_, patch_norm_b_;
  Fusion fusion_parts_;
  std::vector<SwinStage> stages_;
  Parameters audio_;
};

HtsatEncoder::HtsatEncoder(const nlohmann::json& audio_config, Parameters params)
    : impl_(std::make_unique<Impl>(audio_config, std::move(params))) {}
HtsatEncoder::~HtsatEncoder() = default;
HtsatEncoder::HtsatEncoder(HtsatEncoder&&) noexcept = default;
HtsatEncoder& HtsatEncoder::operator=(HtsatEncoder&&) noexcept = default;

HtsatOutput HtsatEncoder::forward(const Tensor& input_features, const Tensor& is_longer,
                                  bool output_hidden_states) const {
  return impl_->forward(input_features, is_longer, output_hidden_states);
}

}  // namespace hfport::models
