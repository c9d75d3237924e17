// The ViT-family image encoder, native. See vision_transformer.h for the computation.
#include "models/vision_transformer.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cast.h"
#include "core/device.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "models/vision_blocks.h"
#include "ops/interpolate.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/patch_embed.h"
#include "ops/rope.h"
#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/vision_steps.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::models {

namespace {

std::string dims(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

class VisionTransformer final : public Model {
 public:
  VisionTransformer(VisionTransformerVariant v, nlohmann::json config, Parameters params,
                    std::string head, const Device& device)
      : v_(std::move(v)), config_(std::move(config)), params_(std::move(params)),
        head_(std::move(head)), device_(device) {
    if (v_.heads <= 0 || v_.hidden % v_.heads != 0) {
      throw ConfigError("native " + v_.family + " model: hidden_size " + std::to_string(v_.hidden) +
                        " is not a multiple of num_attention_heads " + std::to_string(v_.heads));
    }
    if (v_.patch_size <= 0 || v_.image_height < v_.patch_size || v_.image_width < v_.patch_size) {
      throw ConfigError("native " + v_.family + " model: " + v_.image_size_text +
                        " must hold at least one patch of patch_size " +
                        std::to_string(v_.patch_size));
    }
    grid_h_ = v_.image_height / v_.patch_size;
    grid_w_ = v_.image_width / v_.patch_size;
    prefix_ = (v_.class_token ? 1 : 0) + v_.registers;
    switch (v_.prefix_positions) {
      case VisionTransformerVariant::PrefixPositions::ClassToken: table_prefix_ = 1; break;
      case VisionTransformerVariant::PrefixPositions::All: table_prefix_ = prefix_; break;
      case VisionTransformerVariant::PrefixPositions::None: table_prefix_ = 0; break;
    }
    // The tables the embeddings read element by element, contiguous once here.
    if (v_.class_token) cls_ = params_.get("cls_embd").contiguous();
    if (!v_.rope_2d) pos_ = params_.get("pos_embd").contiguous();
    if (v_.registers > 0) registers_ = params_.get("register_embd").contiguous();
    if (const Tensor* token = params_.find("mask_embd")) mask_token_ = token->contiguous();
    for (int64_t i = 0; i < v_.layers; ++i) {
      layers_.push_back(load_prenorm_block(params_, i, v_.swiglu, v_.layer_scale));
    }
    block_options_.heads = v_.heads;
    block_options_.eps = v_.eps;
    block_options_.swiglu = v_.swiglu;
    block_options_.gelu = v_.gelu;
    place_on_device();
  }

  std::string family() const override { return v_.family; }
  const nlohmann::json& config() const override { return config_; }
  std::string main_input_name() const override { return "pixel_values"; }

  ModelOutput forward(const Tensor&, const Tensor&, bool) override {
    throw ArgumentError("native " + v_.family + " model: takes pixel_values, not input_ids");
  }

  using Model::forward_pixels;
  ModelOutput forward_pixels(const Tensor& pixel_values, const Tensor& bool_masked_pos,
                             bool output_hidden_states, bool interpolate_pos_encoding) override {
    const Tensor pixels = checked_pixels(pixel_values, interpolate_pos_encoding);
    const int64_t batch = pixels.shape()[0];
    const int64_t height = pixels.shape()[2], width = pixels.shape()[3];
    const int64_t gh = height / v_.patch_size, gw = width / v_.patch_size;
    const Tensor mask = checked_mask(bool_masked_pos, batch, gh * gw);

    ModelOutput out;
    const bool resizes =
        interpolate_pos_encoding || v_.resize == VisionTransformerVariant::PositionResize::Always;
    Tensor h = embeddings(pixels, mask, height, width, resizes);
    if (output_hidden_states) out.hidden_states.push_back(h);
    PrenormBlockOptions options = block_options_;
    if (v_.rope_2d) {
      const RopeTable table = rope_2d_table(gh, gw, v_.hidden / v_.heads, v_.rope_theta);
      options.rope_cos = to_device(table.cos, device_);
      options.rope_sin = to_device(table.sin, device_);
      options.rope_prefix = prefix_;
    }
    h = run_prenorm_blocks(h, layers_, options, output_hidden_states ? &out.hidden_states : nullptr);
    // timm without final_norm, or with its norm moved after the pooling (fc_norm), has none.
    const Tensor* norm_w = params_.find("output_norm.weight");
    out.last_hidden_state =
        norm_w == nullptr ? h : layer_norm(h, *norm_w, params_.get("output_norm.bias"), v_.eps);
    if (v_.pooled == VisionTransformerVariant::Pooled::Timm) {
      timm_head(out);
      return out;
    }
    const Tensor first = first_token(out.last_hidden_state);  // [batch, hidden]
    if (head_.empty()) {
      const Tensor* pool_w = params_.find("pooler.weight");
      if (v_.pooled == VisionTransformerVariant::Pooled::FirstToken) {
        out.pooled = first;
      } else if (pool_w != nullptr) {
        out.pooled = linear(first, *pool_w, optional("pooler.bias"));
        tanh_inplace(out.pooled);
      }
    } else {
      out.logits = linear(classifier_input(out.last_hidden_state, first),
                          params_.get("cls.out.weight"), params_.get("cls.out.bias"));
    }
    return out;
  }

 private:
  Tensor optional(const std::string& name) const {
    const Tensor* t = params_.find(name);
    return t ? *t : Tensor();
  }

  std::string who() const { return "native " + v_.family + " model: "; }

  // timm's forward_head: pooled = pool_norm(pool(last)) (no pooling with global_pool ""), logits
  // = output(pooled) when the checkpoint has a head.
  void timm_head(ModelOutput& out) const {
    if (v_.global_pool.empty()) return;  // the builder refuses a head without pooling
    const Tensor& last = out.last_hidden_state;
    Tensor pooled;
    if (v_.global_pool == "token") {
      pooled = first_token(last);
    } else {
      pooled = token_mean(last, v_.pool_include_prefix ? 0 : prefix_);
    }
    if (const Tensor* w = params_.find("pool_norm.weight")) {
      pooled = layer_norm(pooled, *w, params_.get("pool_norm.bias"), v_.eps);
    }
    if (const Tensor* w = params_.find("output.weight")) {
      out.logits = linear(pooled, *w, optional("output.bias"));
    }
    out.pooled = pooled;
  }

  // [batch, hidden]: last[:, 0], contiguous, where last lives.
  Tensor first_token(const Tensor& last) const {
    const Tensor first = last.select(1, 0);
    return on_cuda() ? contiguous_copy(first) : first.contiguous();
  }

  bool on_cuda() const { return device_.type == DeviceType::CUDA; }

  // Every parameter the forward reads on the device goes there once (core/cuda_upload.h); the
  // host keeps what it reads element by element: cls_, registers_ (folded into prefix_rows_,
  // uploaded here) and pos_ (resized per image size on the host, uploaded per call). The
  // Parameters' own tensors and the blocks' share storage, so move_parameters moves each once.
  void place_on_device() {
    if (!on_cuda()) return;
    if (prefix_ > 0) {
      const std::vector<float> rows = prefix_rows();
      Tensor host = Tensor::empty(DType::F32, {prefix_, v_.hidden});
      std::memcpy(host.data(), rows.data(), rows.size() * sizeof(float));
      prefix_rows_ = host;
    }
    std::vector<Tensor*> tensors = params_.tensors();
    tensors.push_back(&mask_token_);
    tensors.push_back(&prefix_rows_);
    for (PrenormBlock& b : layers_) {
      for (Tensor* t : {&b.attn_norm_w, &b.attn_norm_b, &b.qkv_w, &b.qkv_b, &b.out_w, &b.out_b,
                        &b.ls1, &b.ffn_norm_w, &b.ffn_norm_b, &b.up_w, &b.up_b, &b.down_w,
                        &b.down_b, &b.ls2}) {
        tensors.push_back(t);
      }
    }
    move_parameters(tensors, device_);
  }

  // The mean of last[b, skip:, :] into out[b * out_row_stride + c], on the device.
  void token_mean_on_device(const Tensor& last, int64_t skip, float* out,
                            int64_t out_row_stride) const {
#ifdef HFPORT_WITH_CUDA
    cuda::CurrentDevice current(device_);
    cuda::TokenMeanParams p;
    p.batch = last.shape()[0];
    p.seq = last.shape()[1];
    p.hidden = v_.hidden;
    p.skip = skip;
    p.out_row_stride = out_row_stride;
    p.x = last.data_as<float>();
    p.out = out;
    cuda::token_mean(p, cuda::op_stream());
#else
    (void)last, (void)skip, (void)out, (void)out_row_stride;
    throw DeviceError(who() + "this build has no CUDA");
#endif
  }

  // [batch, hidden]: the mean of last[:, skip:], summed in float64.
  Tensor token_mean(const Tensor& last, int64_t skip) const {
    const int64_t batch = last.shape()[0], seq = last.shape()[1], hidden = v_.hidden;
    if (on_cuda()) {
      Tensor mean = Tensor::empty(DType::F32, {batch, hidden}, device_);
      token_mean_on_device(last, skip, mean.data_as<float>(), hidden);
      return mean;
    }
    Tensor mean = Tensor::empty(DType::F32, {batch, hidden});
    const float* x = last.data_as<float>();
    std::vector<double> sum(static_cast<size_t>(hidden));
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t p = skip; p < seq; ++p) {
        for (int64_t c = 0; c < hidden; ++c) sum[c] += x[(b * seq + p) * hidden + c];
      }
      for (int64_t c = 0; c < hidden; ++c) {
        mean.data_as<float>()[b * hidden + c] =
            static_cast<float>(sum[c] / static_cast<double>(seq - skip));
      }
    }
    return mean;
  }

  // pixel_values as an F32 host tensor (any strides), after the shape checks transformers makes
  // and the ones it leaves to a crash.
  Tensor checked_pixels(const Tensor& pixel_values, bool interpolate) const {
    if (!pixel_values.defined()) throw ArgumentError(who() + "pixel_values is required");
    const Shape& s = pixel_values.shape();
    const std::string expected = "[batch, " + std::to_string(v_.channels) + ", height, width]";
    if (pixel_values.ndim() != 4 || s[0] < 1 || s[1] != v_.channels) {
      throw ArgumentError(who() + "pixel_values must be " + expected + " (num_channels " +
                          std::to_string(v_.channels) + ", batch >= 1), got " +
                          shape_to_string(s));
    }
    const DType dt = pixel_values.dtype();
    if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16 && dt != DType::F64) {
      throw ArgumentError(who() + "pixel_values must be a float tensor (F32, F16, BF16 or F64), "
                          "got " + std::string(dtype_name(dt)));
    }
    const bool resizes =
        interpolate || v_.resize == VisionTransformerVariant::PositionResize::Always;
    if (!resizes && (s[2] != v_.image_height || s[3] != v_.image_width)) {
      throw ArgumentError(who() + "pixel_values must be [batch, " + std::to_string(v_.channels) +
                          ", " + std::to_string(v_.image_height) + ", " +
                          std::to_string(v_.image_width) + "] (config.json's " +
                          v_.image_size_text + "), got " + shape_to_string(s) +
                          "; pass interpolate_pos_encoding=True to resize the positions to "
                          "another image size");
    }
    if (s[2] < v_.patch_size || s[3] < v_.patch_size) {
      throw ArgumentError(who() + "pixel_values must be at least one patch (" +
                          dims(v_.patch_size, v_.patch_size) + ") high and wide, got " +
                          shape_to_string(s));
    }
    if (v_.timm_resize && (s[2] % v_.patch_size != 0 || s[3] % v_.patch_size != 0)) {
      throw ArgumentError(who() + "pixel_values must tile into whole patches of " +
                          dims(v_.patch_size, v_.patch_size) + " (timm refuses the rest without "
                          "dynamic_img_pad), got " + shape_to_string(s));
    }
    if (on_cuda()) {
      // As torch does, the input must be where the model is; it is read there with any strides.
      if (pixel_values.device() != device_) {
        throw DeviceError(who() + "pixel_values is on " + device_name(pixel_values.device()) +
                          " but the model is on " + device_name(device_) + "; move it there first");
      }
#ifdef HFPORT_WITH_CUDA
      if (dt == DType::F32) return pixel_values;
      cuda::CurrentDevice current(device_);
      return cuda::contiguous_as("native vision model", "pixel_values", pixel_values, DType::F32);
#endif
    }
    const Tensor host =
        pixel_values.device().type == DeviceType::CPU ? pixel_values : to_device(pixel_values, Device{});
    return dt == DType::F32 ? host : cast(host, DType::F32);
  }

  // bool_masked_pos [batch, patches], integer or bool, 0/1: a contiguous U8 copy, or undefined
  // (none given, or DINOv2 without a mask token, which ignores it).
  Tensor checked_mask(const Tensor& bool_masked_pos, int64_t batch, int64_t patches) const {
    if (!bool_masked_pos.defined()) return Tensor();
    const std::string what = who() + "bool_masked_pos";
    if (bool_masked_pos.shape() != Shape{batch, patches}) {
      throw ArgumentError(what + " must be [batch, num_patches] = " +
                          shape_to_string({batch, patches}) + ", got " +
                          shape_to_string(bool_masked_pos.shape()));
    }
    if (dtype_is_floating(bool_masked_pos.dtype())) {
      throw ArgumentError(what + " must be a bool or integer tensor, got " +
                          std::string(dtype_name(bool_masked_pos.dtype())));
    }
    if (!mask_token_.defined()) {
      if (v_.mask_ignored_without_token) return Tensor();
      throw ArgumentError(what + " needs the checkpoint's mask token (embeddings.mask_token), "
                          "which this one does not have");
    }
    const Tensor c = (bool_masked_pos.device().type == DeviceType::CPU
                          ? bool_masked_pos
                          : to_device(bool_masked_pos, Device{}))
                         .contiguous();
    Tensor mask = Tensor::empty(DType::U8, {batch, patches});
    for (int64_t i = 0; i < c.numel(); ++i) {
      const double value = load_as_f64(c.data(), c.dtype(), static_cast<size_t>(i));
      if (value != 0.0 && value != 1.0) {
        throw ArgumentError(what + " holds " + std::to_string(static_cast<int64_t>(value)) +
                            "; only 1 (masked) and 0 (kept) are meaningful");
      }
      mask.data_as<uint8_t>()[i] = static_cast<uint8_t>(value);
    }
    return mask;
  }

  // The positions of the patches, [gh * gw, hidden] contiguous: the table's own rows (always
  // when not resizing: the image is then config.json's size), or their bicubic resize to the grid
  // of this image.
  Tensor patch_positions(int64_t height, int64_t width, bool resizes) const {
    const Tensor& table = pos_;  // [1, table_prefix + grid_h * grid_w, hidden]
    const int64_t hidden = v_.hidden;
    const int64_t gh = height / v_.patch_size, gw = width / v_.patch_size;
    const int64_t count = grid_h_ * grid_w_;
    const size_t skip_bytes = static_cast<size_t>(table_prefix_ * hidden) * sizeof(float);
    const bool keep =
        !resizes || (gh * gw == count && (v_.timm_resize ? gh == gw : height == width));
    if (keep) {
      return Tensor(table.storage(), table.byte_offset() + skip_bytes, DType::F32, {count, hidden},
                    {hidden, 1});
    }
    // The patch rows as [1, hidden, grid_h, grid_w], channels last, as transformers and timm
    // permute them.
    const Tensor grid(table.storage(), table.byte_offset() + skip_bytes, DType::F32,
                      {1, hidden, grid_h_, grid_w_}, {count * hidden, 1, grid_w_ * hidden, hidden});
    const Tensor resized = interpolate_bicubic(grid, gh, gw, v_.antialias);  // [1, hidden, gh, gw]
    Tensor rows = Tensor::empty(DType::F32, {gh * gw, hidden});
    const float* src = resized.data_as<float>();
    float* dst = rows.data_as<float>();
    for (int64_t p = 0; p < gh * gw; ++p) {
      for (int64_t c = 0; c < hidden; ++c) dst[p * hidden + c] = src[c * gh * gw + p];
    }
    return rows;
  }

  // [batch, prefix + gh * gw, hidden]: class token, registers, patches, positions added (then
  // timm's norm_pre).
  Tensor embeddings(const Tensor& pixels, const Tensor& mask, int64_t height, int64_t width,
                    bool resizes) const {
    const Tensor patches = patch_embed(pixels, params_.get("patch_embd.weight"),
                                       optional("patch_embd.bias"),
                                       PatchSize{v_.patch_size, v_.patch_size});
    const Tensor positions = v_.rope_2d ? Tensor() : patch_positions(height, width, resizes);
    const int64_t batch = patches.shape()[0], count = patches.shape()[1], hidden = v_.hidden;
    const int64_t seq = prefix_ + count;
    if (on_cuda()) {
      Tensor h = tokens_on_device(patches, positions, mask, seq);
      if (v_.pre_norm) {
        return layer_norm(h, params_.get("embd_norm.weight"), params_.get("embd_norm.bias"),
                          v_.eps);
      }
      return h;
    }
    Tensor h = Tensor::empty(DType::F32, {batch, seq, hidden});
    const std::vector<float> prefix = prefix_rows();
    const float* pos = v_.rope_2d ? nullptr : positions.data_as<float>();
    const float* token = mask.defined() ? mask_token_.data_as<float>() : nullptr;
    const float* patch = patches.data_as<float>();
    float* dst = h.data_as<float>();
    for (int64_t b = 0; b < batch; ++b) {
      float* row = dst + b * seq * hidden;
      std::memcpy(row, prefix.data(), prefix.size() * sizeof(float));
      for (int64_t p = 0; p < count; ++p) {
        const bool masked = token != nullptr && mask.data_as<uint8_t>()[b * count + p] != 0;
        const float* x = masked ? token : patch + (b * count + p) * hidden;
        float* out = row + (prefix_ + p) * hidden;
        if (pos == nullptr) {
          std::memcpy(out, x, static_cast<size_t>(hidden) * sizeof(float));
        } else {
          for (int64_t c = 0; c < hidden; ++c) out[c] = x[c] + pos[p * hidden + c];
        }
      }
    }
    if (v_.pre_norm) {
      return layer_norm(h, params_.get("embd_norm.weight"), params_.get("embd_norm.bias"), v_.eps);
    }
    return h;
  }

  // The prefix tokens (class token, then registers) with the positions they get: rows of the
  // table for the first table_prefix_ of them, zeros for the rest (and for DINOv3); [prefix_,
  // hidden] row major.
  std::vector<float> prefix_rows() const {
    const int64_t hidden = v_.hidden;
    std::vector<float> prefix(static_cast<size_t>(prefix_ * hidden), 0.0f);
    for (int64_t t = 0; t < prefix_; ++t) {
      const bool is_cls = v_.class_token && t == 0;
      const float* token = is_cls ? cls_.data_as<float>()
                                  : registers_.data_as<float>() +
                                        (t - (v_.class_token ? 1 : 0)) * hidden;
      const float* pos = !v_.rope_2d && t < table_prefix_ ? pos_.data_as<float>() + t * hidden
                                                          : nullptr;
      for (int64_t c = 0; c < hidden; ++c) {
        prefix[t * hidden + c] = pos != nullptr ? token[c] + pos[c] : token[c];
      }
    }
    return prefix;
  }

  // The CUDA side of embeddings' token assembly: patches [batch, count, hidden] on the device,
  // positions [count, hidden] on the host (undefined for DINOv3) and mask U8 on the host
  // (undefined: none) uploaded, then one kernel (kernels/cuda/vision_steps.h).
  Tensor tokens_on_device(const Tensor& patches, const Tensor& positions, const Tensor& mask,
                          int64_t seq) const {
#ifdef HFPORT_WITH_CUDA
    const int64_t batch = patches.shape()[0];
    Tensor h = Tensor::empty(DType::F32, {batch, seq, v_.hidden}, device_);
    const Tensor pos = positions.defined() ? to_device(positions, device_) : Tensor();
    const Tensor keep = mask.defined() ? to_device(mask, device_) : Tensor();
    cuda::CurrentDevice current(device_);
    cuda::VisionTokensParams p;
    p.batch = batch;
    p.prefix = prefix_;
    p.count = patches.shape()[1];
    p.hidden = v_.hidden;
    p.prefix_rows = prefix_ > 0 ? prefix_rows_.data_as<float>() : nullptr;
    p.patches = patches.data_as<float>();
    p.positions = pos.defined() ? pos.data_as<float>() : nullptr;
    p.mask = keep.defined() ? keep.data_as<uint8_t>() : nullptr;
    p.mask_token = keep.defined() ? mask_token_.data_as<float>() : nullptr;
    p.out = h.data_as<float>();
    cuda::vision_tokens(p, cuda::op_stream());
    return h;
#else
    (void)patches, (void)positions, (void)mask, (void)seq;
    throw DeviceError(who() + "this build has no CUDA");
#endif
  }

  // [batch, hidden] (the first token) or [batch, 2 * hidden] (it and the mean patch token).
  Tensor classifier_input(const Tensor& last, const Tensor& first) const {
    if (v_.classifier == VisionTransformerVariant::ClassifierInput::FirstToken) return first;
    const int64_t batch = last.shape()[0], seq = last.shape()[1], hidden = v_.hidden;
    const int64_t skip = prefix_, count = seq - skip;
    if (on_cuda()) {
      Tensor input = Tensor::empty(DType::F32, {batch, 2 * hidden}, device_);
      copy_into(first, input.slice(1, 0, hidden));
      token_mean_on_device(last, skip, input.data_as<float>() + hidden, 2 * hidden);
      return input;
    }
    Tensor input = Tensor::empty(DType::F32, {batch, 2 * hidden});
    const float* x = last.data_as<float>();
    float* dst = input.data_as<float>();
    std::vector<double> sum(static_cast<size_t>(hidden));
    for (int64_t b = 0; b < batch; ++b) {
      std::memcpy(dst + b * 2 * hidden, x + b * seq * hidden, static_cast<size_t>(hidden) * 4);
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t p = skip; p < seq; ++p) {
        for (int64_t c = 0; c < hidden; ++c) sum[c] += x[(b * seq + p) * hidden + c];
      }
      for (int64_t c = 0; c < hidden; ++c) {
        dst[b * 2 * hidden + hidden + c] = static_cast<float>(sum[c] / static_cast<double>(count));
      }
    }
    return input;
  }

  VisionTransformerVariant v_;
  nlohmann::json config_;
  Parameters params_;
  std::string head_;
  Device device_;
  std::vector<PrenormBlock> layers_;
  PrenormBlockOptions block_options_;
  Tensor cls_, pos_, registers_;  // contiguous, on the host; all but pos_ optional
  Tensor mask_token_;              // optional; on the model's device
  Tensor prefix_rows_;             // CUDA: prefix_rows() on the device ([prefix_, hidden])
  int64_t grid_h_ = 0, grid_w_ = 0;  // the position table's grid: the image size / patch_size
  int64_t prefix_ = 0;        // class token and registers before the patches
  int64_t table_prefix_ = 0;  // the position table's rows before the patches'
};

}  // namespace

GeluApproximation vision_gelu(const std::string& family, const nlohmann::json& config) {
  const std::string act = config.value("hidden_act", std::string("gelu"));
  if (act == "gelu") return GeluApproximation::None;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return GeluApproximation::Tanh;
  throw ConfigError("native " + family + " model: hidden_act '" + act + "' is not supported "
                    "(gelu, gelu_new, gelu_pytorch_tanh)");
}

VisionTransformerVariant vision_sizes(const std::string& family, const nlohmann::json& config,
                                      double default_eps) {
  VisionTransformerVariant v;
  v.family = family;
  v.hidden = config_int(family, config, "hidden_size");
  v.layers = config_int(family, config, "num_hidden_layers");
  v.heads = config_int(family, config, "num_attention_heads");
  v.image_height = v.image_width = config_int(family, config, "image_size");
  v.image_size_text = "image_size " + std::to_string(v.image_height);
  v.patch_size = config_int(family, config, "patch_size");
  v.channels = config_int(family, config, "num_channels");
  v.eps = config_number(family, config, "layer_norm_eps", default_eps);
  return v;
}

std::unique_ptr<Model> build_vision_transformer(VisionTransformerVariant variant,
                                                nlohmann::json config,
                                                std::vector<std::pair<std::string, Tensor>> state,
                                                const std::string& head,
                                                const Device& device) {
  require_head(variant.family, head, {"", "image_classification"});
  Parameters params = f32_parameters(variant.family, std::move(state));
  return std::make_unique<VisionTransformer>(std::move(variant), std::move(config),
                                             std::move(params), head, device);
}

}  // namespace hfport::models
