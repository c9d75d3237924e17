// VideoMAE, native. See videomae.h for the computation.
#include "models/videomae.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cast.h"
#include "core/device.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "models/vision_blocks.h"
#include "models/vision_transformer.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/patch_embed.h"
#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/vision_steps.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::models {

namespace {

// What tells the two namings apart: where config.json keeps the sizes and what it calls them,
// the positions, the biases and the outputs (see videomae.h).
struct VideoMaeVariant {
  std::string family;
  int64_t hidden = 0, layers = 0, heads = 0, image_size = 0, patch_size = 0, channels = 0;
  int64_t frames = 0, tubelet = 0;
  double eps = 1e-12;
  GeluApproximation gelu = GeluApproximation::None;
  bool mean_pooling = true;
  bool opengvlab = false;            // OpenGVLab's names, layer scale, pooled output and head
  bool learnable_positions = false;  // OpenGVLab's use_learnable_pos_emb: pos_embd, not sin-cos
  bool layer_scale = false;
  // How messages name the fields ("config.json's num_frames", "model_config.num_frames").
  std::string prefix, channels_field = "num_channels", image_field = "image_size";
};

// get_sinusoid_encoding_table(count, hidden): [count, hidden] F32.
Tensor sinusoid_table(int64_t count, int64_t hidden) {
  Tensor table = Tensor::empty(DType::F32, {count, hidden});
  float* out = table.data_as<float>();
  for (int64_t pos = 0; pos < count; ++pos) {
    for (int64_t j = 0; j < hidden; ++j) {
      const double exponent = static_cast<double>(2 * (j / 2)) / static_cast<double>(hidden);
      const double angle = static_cast<double>(pos) / std::pow(10000.0, exponent);
      out[pos * hidden + j] = static_cast<float>(j % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
  return table;
}

// [3 * hidden]: the q, k and v biases side by side, as the fused qkv projection adds them.
Tensor joined_qkv_bias(const Parameters& params, int64_t i, int64_t hidden) {
  const std::string p = "blk." + std::to_string(i) + ".";
  Tensor bias = Tensor::empty(DType::F32, {3 * hidden});
  const char* parts[] = {"attn_q.bias", "attn_k.bias", "attn_v.bias"};
  for (int64_t which = 0; which < 3; ++which) {
    const Tensor part = params.get(p + parts[which]).contiguous();
    std::memcpy(bias.data_as<float>() + which * hidden, part.data(),
                static_cast<size_t>(hidden) * sizeof(float));
  }
  return bias;
}

class VideoMae final : public Model {
 public:
  VideoMae(VideoMaeVariant v, nlohmann::json config, Parameters params, std::string head,
           const Device& device)
      : v_(std::move(v)), who_("native " + v_.family + " model: "), config_(std::move(config)),
        params_(std::move(params)), head_(std::move(head)), device_(device) {
    hidden_ = v_.hidden;
    image_size_ = v_.image_size;
    patch_size_ = v_.patch_size;
    channels_ = v_.channels;
    frames_ = v_.frames;
    tubelet_ = v_.tubelet;
    mean_pooling_ = v_.mean_pooling;
    if (v_.heads <= 0 || hidden_ % v_.heads != 0) {
      throw ConfigError(who_ + "hidden_size " + std::to_string(hidden_) +
                        " is not a multiple of num_attention_heads " + std::to_string(v_.heads));
    }
    if (patch_size_ <= 0 || tubelet_ <= 0 || image_size_ < patch_size_ || frames_ < tubelet_) {
      throw ConfigError(who_ + "image_size " + std::to_string(image_size_) + " and num_frames " +
                        std::to_string(frames_) + " must hold at least one tubelet of patch_size " +
                        std::to_string(patch_size_) + " and tubelet_size " +
                        std::to_string(tubelet_));
    }
    if (frames_ % tubelet_ != 0) {
      throw ConfigError(who_ + v_.prefix + "num_frames " + std::to_string(frames_) +
                        " is not a multiple of " + v_.prefix + "tubelet_size " +
                        std::to_string(tubelet_));
    }
    const int64_t grid = image_size_ / patch_size_;
    if (v_.learnable_positions) {
      positions_ = params_.get("pos_embd").contiguous();  // [1, patches, hidden]
    } else {
      positions_ = sinusoid_table((frames_ / tubelet_) * grid * grid, hidden_);
    }
    // transformers: the q, k and v biases joined; OpenGVLab: q and v, zeros for k (as its
    // attention concatenates them), which load_prenorm_block's fusion gives.
    const bool join = !v_.opengvlab && config_bool(v_.family, config_, "qkv_bias", true);
    for (int64_t i = 0; i < v_.layers; ++i) {
      PrenormBlock block = load_prenorm_block(params_, i, false, v_.layer_scale);
      if (join) block.qkv_b = joined_qkv_bias(params_, i, hidden_);
      blocks_.push_back(std::move(block));
    }
    options_.heads = v_.heads;
    options_.eps = v_.eps;
    options_.gelu = v_.gelu;
    place_on_device();
  }

  std::string family() const override { return v_.family; }
  const nlohmann::json& config() const override { return config_; }
  std::string main_input_name() const override { return "pixel_values"; }

  ModelOutput forward(const Tensor&, const Tensor&, bool) override {
    throw ArgumentError(who_ + "takes pixel_values, not input_ids");
  }

  using Model::forward_pixels;
  ModelOutput forward_pixels(const Tensor& pixel_values, const Tensor& bool_masked_pos,
                             bool output_hidden_states, bool interpolate_pos_encoding) override {
    if (interpolate_pos_encoding) {
      throw ArgumentError(who_ + "interpolate_pos_encoding is not supported: VideoMAE's "
                          "positions are a fixed table of config.json's " + v_.prefix +
                          "num_frames and " + v_.prefix + v_.image_field + ", and " +
                          (v_.opengvlab ? "OpenGVLab's VisionTransformer"
                                        : "transformers' VideoMAEModel") +
                          " takes no other size");
    }
    const Tensor video = checked_video(pixel_values);
    const Tensor patches = patch_embed(video, params_.get("patch_embd.weight"),
                                       params_.get("patch_embd.bias"),
                                       PatchSize{patch_size_, patch_size_, tubelet_});
    const int64_t batch = patches.shape()[0], count = patches.shape()[1];
    Tensor h = keep_unmasked(with_positions(patches), bool_masked_pos, batch, count);
    ModelOutput out;
    if (output_hidden_states) out.hidden_states.push_back(h);
    h = run_prenorm_blocks(h, blocks_, options_, output_hidden_states ? &out.hidden_states : nullptr);
    if (v_.opengvlab) {
      opengvlab_tail(h, out);
      return out;
    }
    out.last_hidden_state =
        mean_pooling_ ? h
                      : layer_norm(h, params_.get("output_norm.weight"),
                                   params_.get("output_norm.bias"), options_.eps);
    if (!head_.empty()) {
      Tensor input;
      if (mean_pooling_) {
        // nn.LayerNorm(hidden_size) with torch's default eps, not config.json's layer_norm_eps.
        input = layer_norm(token_mean(out.last_hidden_state), params_.get("cls.norm.weight"),
                           params_.get("cls.norm.bias"), 1e-5);
      } else {
        input = first_token(out.last_hidden_state);
      }
      out.logits = linear(input, params_.get("cls.out.weight"), params_.get("cls.out.bias"));
    }
    return out;
  }

 private:
  bool on_cuda() const { return device_.type == DeviceType::CUDA; }

  // Every tensor the forward reads goes to the device once: the parameters, the blocks' (the
  // joined q/k/v biases were made on the host above, OpenGVLab's zero k bias among them) and the
  // position table, fixed by config.json and so uploaded here, never per call. The blocks and
  // positions_ share storage with params_, so move_parameters moves each once.
  void place_on_device() {
    if (!on_cuda()) return;
    std::vector<Tensor*> tensors = params_.tensors();
    tensors.push_back(&positions_);
    for (PrenormBlock& b : blocks_) {
      for (Tensor* t : {&b.attn_norm_w, &b.attn_norm_b, &b.qkv_w, &b.qkv_b, &b.out_w, &b.out_b,
                        &b.ls1, &b.ffn_norm_w, &b.ffn_norm_b, &b.up_w, &b.up_b, &b.down_w,
                        &b.down_b, &b.ls2}) {
        tensors.push_back(t);
      }
    }
    move_parameters(tensors, device_);
  }

  // [batch, hidden]: h[:, 0], contiguous, where h lives.
  Tensor first_token(const Tensor& h) const {
    const Tensor first = h.select(1, 0);
    return on_cuda() ? contiguous_copy(first) : first.contiguous();
  }

  // OpenGVLab's forward_features and head: without mean pooling last = norm(h) and pooled =
  // last[:, 0]; with it last = h and pooled = fc_norm(mean over tokens) (config.json's eps).
  void opengvlab_tail(const Tensor& h, ModelOutput& out) const {
    if (mean_pooling_) {
      out.last_hidden_state = h;
      out.pooled = layer_norm(token_mean(h), params_.get("pool_norm.weight"),
                              params_.get("pool_norm.bias"), options_.eps);
    } else {
      out.last_hidden_state = layer_norm(h, params_.get("output_norm.weight"),
                                         params_.get("output_norm.bias"), options_.eps);
      out.pooled = first_token(out.last_hidden_state);
    }
    if (const Tensor* w = params_.find("output.weight")) {
      out.logits = linear(out.pooled, *w, params_.get("output.bias"));
    }
  }

  // [batch, channels, frames, H, W] view (F32, on the model's device) of pixel_values
  // [batch, frames, channels, H, W].
  Tensor checked_video(const Tensor& pixel_values) const {
    if (!pixel_values.defined()) throw ArgumentError(who_ + "pixel_values is required");
    const Shape& s = pixel_values.shape();
    const std::string expected = "[batch, " + std::to_string(frames_) + ", " +
                                 std::to_string(channels_) + ", " + std::to_string(image_size_) +
                                 ", " + std::to_string(image_size_) + "]";
    if (pixel_values.ndim() != 5 || s[0] < 1 || s[2] != channels_ || s[3] != image_size_ ||
        s[4] != image_size_) {
      throw ArgumentError(who_ + "pixel_values must be [batch, num_frames, num_channels, height, "
                          "width] = " + expected + " (config.json's " + v_.prefix +
                          v_.channels_field + " and " + v_.image_field + "; batch >= 1), got " +
                          shape_to_string(s));
    }
    if (s[1] % tubelet_ != 0) {
      throw ArgumentError(who_ + "pixel_values has " + std::to_string(s[1]) + " frames, not a "
                          "multiple of " + v_.prefix + "tubelet_size " + std::to_string(tubelet_) +
                          ": " + shape_to_string(s));
    }
    if (s[1] / tubelet_ != frames_ / tubelet_) {
      throw ArgumentError(who_ + "pixel_values must be " + expected + " (config.json's " +
                          v_.prefix + "num_frames " + std::to_string(frames_) + ": the " +
                          (v_.learnable_positions ? "learned" : "sin-cos") + " positions are "
                          "for " + std::to_string(frames_ / tubelet_) + " tubelets), got " +
                          shape_to_string(s));
    }
    const DType dt = pixel_values.dtype();
    if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16 && dt != DType::F64) {
      throw ArgumentError(who_ + "pixel_values must be a float tensor (F32, F16, BF16 or F64), "
                          "got " + std::string(dtype_name(dt)));
    }
    const Tensor frames = on_cuda() ? video_on_device(pixel_values) : video_on_host(pixel_values);
    const Shape& st = frames.strides();
    return Tensor(frames.storage(), frames.byte_offset(), DType::F32,
                  {s[0], s[2], s[1], s[3], s[4]}, {st[0], st[2], st[1], st[3], st[4]});
  }

  // pixel_values as F32 on the host, in its own strides when it is F32 already.
  static Tensor video_on_host(const Tensor& pixel_values) {
    const Tensor host = pixel_values.device().type == DeviceType::CPU
                            ? pixel_values
                            : to_device(pixel_values, Device{});
    return host.dtype() == DType::F32 ? host : cast(host, DType::F32);
  }

  // pixel_values as F32 on the model's device, where it must already be (as torch requires);
  // F32 is read in its own strides by patch_embed's gather, another dtype widened there first.
  Tensor video_on_device(const Tensor& pixel_values) const {
    if (pixel_values.device() != device_) {
      throw DeviceError(who_ + "pixel_values is on " + device_name(pixel_values.device()) +
                        " but the model is on " + device_name(device_) + "; move it there first");
    }
#ifdef HFPORT_WITH_CUDA
    if (pixel_values.dtype() == DType::F32) return pixel_values;
    cuda::CurrentDevice current(device_);
    return cuda::contiguous_as(v_.family.c_str(), "pixel_values", pixel_values, DType::F32);
#else
    throw DeviceError(who_ + "this build has no CUDA");
#endif
  }

  // patches [batch, count, hidden] + positions_ (every video the same rows), where they live.
  Tensor with_positions(const Tensor& patches) const {
    const int64_t batch = patches.shape()[0], count = patches.shape()[1];
    if (on_cuda()) return with_positions_on_device(patches);
    Tensor h = Tensor::empty(DType::F32, {batch, count, hidden_});
    const float* x = patches.data_as<float>();
    const float* pos = positions_.data_as<float>();
    float* dst = h.data_as<float>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < count * hidden_; ++i) {
        dst[b * count * hidden_ + i] = x[b * count * hidden_ + i] + pos[i];
      }
    }
    return h;
  }

  // The CUDA side of with_positions: vision_tokens (kernels/cuda/vision_steps.h) with no prefix
  // tokens and no mask token, the same F32 sum as the host loop.
  Tensor with_positions_on_device(const Tensor& patches) const {
#ifdef HFPORT_WITH_CUDA
    const int64_t batch = patches.shape()[0], count = patches.shape()[1];
    Tensor h = Tensor::empty(DType::F32, {batch, count, hidden_}, device_);
    cuda::CurrentDevice current(device_);
    cuda::VisionTokensParams p;
    p.batch = batch;
    p.count = count;
    p.hidden = hidden_;
    p.patches = patches.data_as<float>();
    p.positions = positions_.data_as<float>();
    p.out = h.data_as<float>();
    cuda::vision_tokens(p, cuda::op_stream());
    return h;
#else
    (void)patches;
    throw DeviceError(who_ + "this build has no CUDA");
#endif
  }

  // The tokens bool_masked_pos keeps, in order: embeddings[~bool_masked_pos].reshape(batch, -1,
  // hidden), so every row must mask as many tokens.
  Tensor keep_unmasked(const Tensor& h, const Tensor& bool_masked_pos, int64_t batch,
                       int64_t count) const {
    if (!bool_masked_pos.defined()) return h;
    const std::string what = who_ + "bool_masked_pos";
    if (bool_masked_pos.shape() != Shape{batch, count}) {
      throw ArgumentError(what + " must be [batch, num_patches] = " +
                          shape_to_string({batch, count}) + ", got " +
                          shape_to_string(bool_masked_pos.shape()));
    }
    if (dtype_is_floating(bool_masked_pos.dtype())) {
      throw ArgumentError(what + " must be a bool or integer tensor, got " +
                          std::string(dtype_name(bool_masked_pos.dtype())));
    }
    const Tensor mask = (bool_masked_pos.device().type == DeviceType::CPU
                             ? bool_masked_pos
                             : to_device(bool_masked_pos, Device{}))
                            .contiguous();
    std::vector<std::vector<int64_t>> kept(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < count; ++i) {
        const double v = load_as_f64(mask.data(), mask.dtype(), static_cast<size_t>(b * count + i));
        if (v != 0.0 && v != 1.0) {
          throw ArgumentError(what + " holds " + std::to_string(static_cast<int64_t>(v)) +
                              "; only 1 (masked) and 0 (kept) are meaningful");
        }
        if (v == 0.0) kept[static_cast<size_t>(b)].push_back(i);
      }
      if (kept[static_cast<size_t>(b)].size() != kept[0].size()) {
        throw ArgumentError(what + " must mask as many tubelets in every video (transformers "
                            "reshapes the kept ones to [batch, -1, hidden]); row 0 keeps " +
                            std::to_string(kept[0].size()) + ", row " + std::to_string(b) +
                            " keeps " + std::to_string(kept[static_cast<size_t>(b)].size()));
      }
    }
    const int64_t keep = static_cast<int64_t>(kept[0].size());
    if (keep == 0) throw ArgumentError(what + " masks every tubelet; at least one must stay");
    // The kept rows gathered as table rows of h seen as [batch * count, hidden]: memcpy on the
    // host, a row-copy kernel on a GPU (the row ids go there from the host).
    Tensor rows = Tensor::empty(DType::I64, {batch, keep});
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t k = 0; k < keep; ++k) {
        rows.data_as<int64_t>()[b * keep + k] =
            b * count + kept[static_cast<size_t>(b)][static_cast<size_t>(k)];
      }
    }
    return embedding_rows(h.view({batch * count, hidden_}), rows);
  }

  // [batch, hidden]: the mean over the tokens, summed in float64 in token order (on a GPU too:
  // kernels/cuda/vision_steps.h token_mean, one thread per feature).
  Tensor token_mean(const Tensor& h) const {
    const int64_t batch = h.shape()[0], seq = h.shape()[1];
    if (on_cuda()) {
#ifdef HFPORT_WITH_CUDA
      Tensor mean = Tensor::empty(DType::F32, {batch, hidden_}, device_);
      cuda::CurrentDevice current(device_);
      cuda::TokenMeanParams p;
      p.batch = batch;
      p.seq = seq;
      p.hidden = hidden_;
      p.out_row_stride = hidden_;
      p.x = h.data_as<float>();
      p.out = mean.data_as<float>();
      cuda::token_mean(p, cuda::op_stream());
      return mean;
#endif
    }
    Tensor mean = Tensor::empty(DType::F32, {batch, hidden_});
    std::vector<double> sum(static_cast<size_t>(hidden_));
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t t = 0; t < seq; ++t) {
        const float* x = h.data_as<float>() + (b * seq + t) * hidden_;
        for (int64_t c = 0; c < hidden_; ++c) sum[static_cast<size_t>(c)] += x[c];
      }
      for (int64_t c = 0; c < hidden_; ++c) {
        mean.data_as<float>()[b * hidden_ + c] =
            static_cast<float>(sum[static_cast<size_t>(c)] / static_cast<double>(seq));
      }
    }
    return mean;
  }

  VideoMaeVariant v_;
  std::string who_;  // "native <family> model: ", what every message starts with
  nlohmann::json config_;
  Parameters params_;
  std::string head_;
  Device device_;
  std::vector<PrenormBlock> blocks_;
  PrenormBlockOptions options_;
  Tensor positions_;  // [patches, hidden] (learned: [1, patches, hidden]); on the model's device
  int64_t hidden_ = 0, image_size_ = 0, patch_size_ = 0, channels_ = 0, frames_ = 0, tubelet_ = 0;
  bool mean_pooling_ = true;
};

}  // namespace

std::unique_ptr<Model> build_videomae_model(nlohmann::json config,
                                            std::vector<std::pair<std::string, Tensor>> state,
                                            const Device& device, const std::string& head) {
  const std::string family = "videomae";
  require_head(family, head, {"", "video_classification"});
  const VisionTransformerVariant sizes = vision_sizes(family, config, 1e-12);
  VideoMaeVariant v;
  v.family = family;
  v.hidden = sizes.hidden;
  v.layers = sizes.layers;
  v.heads = sizes.heads;
  v.image_size = sizes.image_height;
  v.patch_size = sizes.patch_size;
  v.channels = sizes.channels;
  v.eps = sizes.eps;
  v.frames = config_int(family, config, "num_frames");
  v.tubelet = config_int(family, config, "tubelet_size");
  v.mean_pooling = config_bool(family, config, "use_mean_pooling", true);
  v.gelu = vision_gelu(family, config);
  Parameters params = f32_parameters(family, std::move(state));
  return std::make_unique<VideoMae>(std::move(v), std::move(config), std::move(params), head,
                                    device);
}

std::unique_ptr<Model> build_videomae_opengvlab_model(
    nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state,
    const Device& device, const std::string& head) {
  const std::string family = "videomae_opengvlab";
  require_head(family, head, {""});  // the head is part of the model (output.weight)
  const auto it = config.find("model_config");
  if (it == config.end() || !it->is_object()) {
    throw ConfigError("native " + family + " model: config.json needs the object "
                      "'model_config' (OpenGVLab's VisionTransformer arguments)");
  }
  const nlohmann::json& m = *it;
  const auto refuse = [&](const std::string& field, const std::string& supported) {
    throw ConfigError("native " + family + " model: config.json's model_config." + field + " " +
                      m[field].dump() + " is not supported (" + supported + ")");
  };
  if (m.value("cos_attn", false)) refuse("cos_attn", "false");
  for (const char* key : {"qk_scale", "attn_head_dim"}) {
    if (m.contains(key) && !m[key].is_null()) refuse(key, "null");
  }
  if (m.contains("norm_layer") && !m["norm_layer"].is_null() &&
      m["norm_layer"] != "nn.LayerNorm") {
    refuse("norm_layer", "nn.LayerNorm");
  }
  VideoMaeVariant v;
  v.family = family;
  v.opengvlab = true;
  v.prefix = "model_config.";
  v.channels_field = "in_chans";
  v.image_field = "img_size";
  v.hidden = config_int(family, m, "embed_dim");
  v.layers = config_int(family, m, "depth");
  v.heads = config_int(family, m, "num_heads");
  v.image_size = config_int(family, m, "img_size");
  v.patch_size = config_int(family, m, "patch_size");
  v.channels = config_int(family, m, "in_chans");
  v.frames = config_int(family, m, "num_frames");
  v.tubelet = config_int(family, m, "tubelet_size");
  v.eps = config_number(family, m, "layer_norm_eps", 1e-6);
  v.mean_pooling = config_bool(family, m, "use_mean_pooling", true);
  v.learnable_positions = config_bool(family, m, "use_learnable_pos_emb", false);
  v.layer_scale = config_number(family, m, "init_values", 0.0) > 0.0;
  Parameters params = f32_parameters(family, std::move(state));
  return std::make_unique<VideoMae>(std::move(v), std::move(config), std::move(params), head,
                                    device);
}

}  // namespace hfport::models
