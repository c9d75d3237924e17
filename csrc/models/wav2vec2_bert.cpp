// The native Wav2Vec2-BERT conformer encoder. See wav2vec2_bert.h.
#include "models/wav2vec2_bert.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cast.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "core/parallel.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/causal_conv1d.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope.h"

namespace hfport::models {

namespace {

constexpr const char* kFamily = "wav2vec2-bert";

enum class Positions { None, RelativeKey, Rotary };
enum class Activation { Silu, Gelu, GeluTanh, Relu };

struct ConformerBlock {
  Tensor ffn1_norm_w, ffn1_norm_b, ffn1_up_w, ffn1_up_b, ffn1_down_w, ffn1_down_b;
  Tensor attn_norm_w, attn_norm_b, qkv_w, qkv_b, out_w, out_b, rel_pos;  // rel_pos: relative_key
  Tensor conv_norm_w, conv_norm_b, pw1_w, dw_w, dw_norm_w, dw_norm_b, pw2_w;
  Tensor ffn2_norm_w, ffn2_norm_b, ffn2_up_w, ffn2_up_b, ffn2_down_w, ffn2_down_b;
  Tensor out_norm_w, out_norm_b;
};

Activation activation_of(const nlohmann::json& config) {
  const std::string act = config.value("hidden_act", std::string("swish"));
  if (act == "swish" || act == "silu") return Activation::Silu;
  if (act == "gelu") return Activation::Gelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return Activation::GeluTanh;
  if (act == "relu") return Activation::Relu;
  throw ConfigError(std::string("native ") + kFamily + " model: hidden_act '" + act +
                    "' is not supported (swish, silu, gelu, gelu_new, gelu_pytorch_tanh, relu)");
}

Tensor activated(const Tensor& x, Activation act) {
  switch (act) {
    case Activation::Silu: return silu(x);
    case Activation::Gelu: return gelu(x, GeluApproximation::None);
    case Activation::GeluTanh: return gelu(x, GeluApproximation::Tanh);
    case Activation::Relu: {
      Tensor out = contiguous_copy(x);
      float* v = out.data_as<float>();
      for (int64_t i = 0; i < out.numel(); ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
      return out;
    }
  }
  return x;
}

// out = branch * 0.5 + residual (the conformer's half-step FFN), in place in `branch`.
void half_step_add(const Tensor& branch, const Tensor& residual) {
  float* b = branch.data_as<float>();
  const float* r = residual.data_as<float>();
  parallel_for(branch.numel(), 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) b[i] = b[i] * 0.5f + r[i];
  });
}

class Wav2Vec2BertModel final : public Model {
 public:
  Wav2Vec2BertModel(nlohmann::json config, Parameters params)
      : config_(std::move(config)), params_(std::move(params)) {
    hidden_ = config_int(kFamily, config_, "hidden_size");
    heads_ = config_int(kFamily, config_, "num_attention_heads");
    features_ = config_int(kFamily, config_, "feature_projection_input_dim");
    eps_ = config_number(kFamily, config_, "layer_norm_eps", 1e-5);
    act_ = activation_of(config_);
    if (heads_ <= 0 || hidden_ % heads_ != 0) {
      throw ConfigError(std::string("native ") + kFamily + " model: hidden_size " +
                        std::to_string(hidden_) + " is not a multiple of num_attention_heads " +
                        std::to_string(heads_));
    }
    for (const char* off : {"add_adapter", "use_intermediate_ffn_before_adapter"}) {
      if (config_bool(kFamily, config_, off, false)) {
        throw ConfigError(std::string("native ") + kFamily + " model: " + off + " is not "
                          "supported (the adapter and the intermediate FFN are not loaded)");
      }
    }
    const nlohmann::json& type = config_["position_embeddings_type"];
    const std::string positions = type.is_string() ? type.get<std::string>() : "";
    if (positions == "relative_key") {
      positions_ = Positions::RelativeKey;
      left_ = config_int(kFamily, config_, "left_max_position_embeddings");
      right_ = config_int(kFamily, config_, "right_max_position_embeddings");
    } else if (positions == "rotary") {
      positions_ = Positions::Rotary;
    } else if (!positions.empty()) {
      throw ConfigError(std::string("native ") + kFamily + " model: position_embeddings_type '" +
                        positions + "' is not supported (relative_key, rotary, or none)");
    }
    const int64_t layers = config_int(kFamily, config_, "num_hidden_layers");
    for (int64_t i = 0; i < layers; ++i) blocks_.push_back(load_block(i));
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }
  std::string main_input_name() const override { return "input_features"; }

  ModelOutput forward(const Tensor&, const Tensor&, bool) override {
    throw ArgumentError(std::string("native ") + kFamily + " model: takes input_features, not "
                        "input_ids");
  }

  ModelOutput forward_audio(const Tensor& input_features, const Tensor& attention_mask,
                            bool output_hidden_states) override {
    const Tensor features = checked_features(input_features);
    const int64_t batch = features.shape()[0], frames = features.shape()[1];
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, {batch, frames});
    Tensor x = linear(layer_norm(features, params_.get("feat_proj_norm.weight"),
                                 params_.get("feat_proj_norm.bias"), eps_),
                      params_.get("feat_proj.weight"), params_.get("feat_proj.bias"));
    if (mask.defined()) mask_rows_inplace(x, mask);
    ModelOutput out;
    if (output_hidden_states) out.hidden_states.push_back(x);
    RopeTable rotary;
    if (positions_ == Positions::Rotary) rotary = rotary_table(frames);
    for (const ConformerBlock& block : blocks_) {
      x = run_block(block, x, mask, rotary);
      if (output_hidden_states) out.hidden_states.push_back(x);
    }
    out.last_hidden_state = x;
    return out;
  }

 private:
  ConformerBlock load_block(int64_t i) const {
    const std::string p = "blk." + std::to_string(i) + ".";
    const auto get = [&](const std::string& name) { return params_.get(p + name); };
    ConformerBlock b;
    b.ffn1_norm_w = get("ffn1_norm.weight");
    b.ffn1_norm_b = get("ffn1_norm.bias");
    b.ffn1_up_w = get("ffn1_up.weight");
    b.ffn1_up_b = get("ffn1_up.bias");
    b.ffn1_down_w = get("ffn1_down.weight");
    b.ffn1_down_b = get("ffn1_down.bias");
    b.attn_norm_w = get("attn_norm.weight");
    b.attn_norm_b = get("attn_norm.bias");
    b.qkv_w = get("attn_qkv.weight");
    b.qkv_b = get("attn_qkv.bias");
    b.out_w = get("attn_out.weight");
    b.out_b = get("attn_out.bias");
    if (positions_ == Positions::RelativeKey) b.rel_pos = get("attn_rel_pos_embd.weight").contiguous();
    b.conv_norm_w = get("conv_norm.weight");
    b.conv_norm_b = get("conv_norm.bias");
    b.pw1_w = get("conv_pw1.weight");
    b.dw_w = get("conv_dw.weight");
    b.dw_norm_w = get("conv_dw_norm.weight");
    b.dw_norm_b = get("conv_dw_norm.bias");
    b.pw2_w = get("conv_pw2.weight");
    b.ffn2_norm_w = get("ffn2_norm.weight");
    b.ffn2_norm_b = get("ffn2_norm.bias");
    b.ffn2_up_w = get("ffn2_up.weight");
    b.ffn2_up_b = get("ffn2_up.bias");
    b.ffn2_down_w = get("ffn2_down.weight");
    b.ffn2_down_b = get("ffn2_down.bias");
    b.out_norm_w = get("out_norm.weight");
    b.out_norm_b = get("out_norm.bias");
    return b;
  }

  // input_features as a contiguous F32 host tensor [batch, frames, features].
  Tensor checked_features(const Tensor& t) const {
    const std::string who = std::string("native ") + kFamily + " model: input_features";
    if (!t.defined()) throw ArgumentError(who + " is required");
    if (t.ndim() != 3 || t.shape()[0] < 1 || t.shape()[1] < 1 || t.shape()[2] != features_) {
      throw ArgumentError(who + " must be [batch, frames, " + std::to_string(features_) +
                          "] (feature_projection_input_dim " + std::to_string(features_) +
                          "), got " + shape_to_string(t.shape()));
    }
    if (!dtype_is_floating(t.dtype())) {
      throw ArgumentError(who + " must be a float tensor, got " +
                          std::string(dtype_name(t.dtype())));
    }
    const Tensor host = t.device().type == DeviceType::CPU ? t : to_device(t, Device{});
    return (host.dtype() == DType::F32 ? host : cast(host, DType::F32)).contiguous();
  }

  // transformers' Wav2Vec2BertRotaryPositionalEmbedding: the default RoPE table of the head size.
  RopeTable rotary_table(int64_t frames) const {
    RopeConfig rope;
    rope.theta = config_number(kFamily, config_, "rotary_embedding_base", 10000.0);
    rope.head_dim = hidden_ / heads_;
    Tensor positions = Tensor::empty(DType::I64, {frames});
    for (int64_t t = 0; t < frames; ++t) positions.data_as<int64_t>()[t] = t;
    return rope_table(rope, positions);
  }

  Tensor feed_forward(const Tensor& x, const Tensor& up_w, const Tensor& up_b, const Tensor& down_w,
                      const Tensor& down_b) const {
    return linear(activated(linear(x, up_w, up_b), act_), down_w, down_b);
  }

  // [batch, heads, frames, frames] F32: q_l . E[clamp(r - l) + left] * scale for every query l
  // and key r, transformers' relative_key bias. q: the [batch, frames, heads, head_dim] view.
  Tensor relative_key_bias(const Tensor& q, const Tensor& table, double scale) const {
    const int64_t batch = q.shape()[0], frames = q.shape()[1], head_dim = q.shape()[3];
    const int64_t distances = table.shape()[0];
    // q . e for every query row (batch, frame, head) and every clamped distance: one GEMM
    // [batch * frames * heads, head_dim] x [head_dim, distances], then spread over the keys.
    const Tensor dots =
        linear(contiguous_copy(q).view({batch * frames * heads_, head_dim}), table);
    Tensor bias = Tensor::empty(DType::F32, {batch, heads_, frames, frames});
    const float* dd = dots.data_as<float>();
    float* out = bias.data_as<float>();
    parallel_for(batch * heads_ * frames, 16, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t b = item / (heads_ * frames), h = (item / frames) % heads_, l = item % frames;
        const float* dl = dd + ((b * frames + l) * heads_ + h) * distances;
        float* row = out + item * frames;
        for (int64_t r = 0; r < frames; ++r) {
          row[r] = static_cast<float>(dl[std::clamp(r - l, -left_, right_) + left_] * scale);
        }
      }
    });
    return bias;
  }

  Tensor attention_branch(const ConformerBlock& b, const Tensor& x, const Tensor& mask,
                          const RopeTable& rotary) const {
    const int64_t batch = x.shape()[0], frames = x.shape()[1], head_dim = hidden_ / heads_;
    const Tensor normed = layer_norm(x, b.attn_norm_w, b.attn_norm_b, eps_);
    Tensor q, k, v;
    const Shape bshd = {batch, frames, heads_, head_dim};
    if (positions_ == Positions::Rotary) {
      // The rotation acts on the q and k projections' input; v reads the unrotated one.
      RopeOptions rope_options;
      rope_options.layout = AttentionLayout::BSHD;
      const Tensor turned = rope(normed.view(bshd), Tensor(), rotary.cos, rotary.sin, rope_options)
                                .q.view({batch, frames, hidden_});
      const Tensor qk = linear(turned, b.qkv_w.slice(0, 0, 2 * hidden_),
                               b.qkv_b.slice(0, 0, 2 * hidden_));
      const Tensor vv = linear(normed, b.qkv_w.slice(0, 2 * hidden_, 3 * hidden_),
                               b.qkv_b.slice(0, 2 * hidden_, 3 * hidden_));
      q = fused_projection_part(qk, 2, 0, heads_);
      k = fused_projection_part(qk, 2, 1, heads_);
      v = vv.view(bshd);
    } else {
      const Tensor qkv = linear(normed, b.qkv_w, b.qkv_b);
      q = fused_projection_part(qkv, 3, 0, heads_);
      k = fused_projection_part(qkv, 3, 1, heads_);
      v = fused_projection_part(qkv, 3, 2, heads_);
    }
    AttentionOptions options;
    options.layout = AttentionLayout::BSHD;
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    options.scale = scale;
    if (positions_ == Positions::RelativeKey) {
      options.attn_mask = relative_key_bias(q, b.rel_pos, static_cast<float>(scale));
    }
    if (mask.defined()) options.key_padding_mask = mask;
    const Tensor context = attention(q, k, v, options).out.view({batch, frames, hidden_});
    return linear(context, b.out_w, b.out_b);
  }

  Tensor conv_branch(const ConformerBlock& b, const Tensor& x, const Tensor& mask) const {
    const int64_t batch = x.shape()[0], frames = x.shape()[1], h = hidden_;
    const Tensor normed = layer_norm(x, b.conv_norm_w, b.conv_norm_b, eps_);
    if (mask.defined()) mask_rows_inplace(normed, mask);
    const Tensor doubled = linear(normed, b.pw1_w);  // [batch, frames, 2 h]
    // GLU over the channels: the first half times the sigmoid of the second.
    Tensor gated = Tensor::empty(DType::F32, {batch, frames, h});
    const float* in = doubled.data_as<float>();
    float* g = gated.data_as<float>();
    parallel_for(batch * frames, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        for (int64_t c = 0; c < h; ++c) {
          const float gate = in[row * 2 * h + h + c];
          g[row * h + c] = in[row * 2 * h + c] * (1.0f / (1.0f + std::exp(-gate)));
        }
      }
    });
    // The depthwise convolution over time, causal (transformers pads kernel - 1 frames on the
    // left only), reading the [batch, frames, h] activations as [batch, h, frames] in place.
    const Tensor channels_first(gated.storage(), gated.byte_offset(), DType::F32, {batch, h, frames},
                                {frames * h, 1, h});
    const Tensor conv = causal_conv1d(channels_first, b.dw_w);  // [batch, h, frames]
    Tensor time_major = Tensor::empty(DType::F32, {batch, frames, h});
    const float* cv = conv.data_as<float>();
    float* tm = time_major.data_as<float>();
    parallel_for(batch * frames, 64, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t bt = row / frames, t = row % frames;
        for (int64_t c = 0; c < h; ++c) tm[row * h + c] = cv[(bt * h + c) * frames + t];
      }
    });
    const Tensor normed2 = layer_norm(time_major, b.dw_norm_w, b.dw_norm_b, eps_);
    return linear(activated(normed2, act_), b.pw2_w);
  }

  Tensor run_block(const ConformerBlock& b, const Tensor& x, const Tensor& mask,
                   const RopeTable& rotary) const {
    Tensor f1 = feed_forward(layer_norm(x, b.ffn1_norm_w, b.ffn1_norm_b, eps_), b.ffn1_up_w,
                             b.ffn1_up_b, b.ffn1_down_w, b.ffn1_down_b);
    half_step_add(f1, x);
    Tensor a = attention_branch(b, f1, mask, rotary);
    add_inplace(a, f1);
    Tensor c = conv_branch(b, a, mask);
    add_inplace(c, a);
    Tensor f2 = feed_forward(layer_norm(c, b.ffn2_norm_w, b.ffn2_norm_b, eps_), b.ffn2_up_w,
                             b.ffn2_up_b, b.ffn2_down_w, b.ffn2_down_b);
    half_step_add(f2, c);
    return layer_norm(f2, b.out_norm_w, b.out_norm_b, eps_);
  }

  nlohmann::json config_;
  Parameters params_;
  std::vector<ConformerBlock> blocks_;
  int64_t hidden_ = 0, heads_ = 0, features_ = 0, left_ = 0, right_ = 0;
  double eps_ = 1e-5;
  Activation act_ = Activation::Silu;
  Positions positions_ = Positions::None;
};

}  // namespace

std::unique_ptr<Model> build_wav2vec2_bert_model(nlohmann::json config,
                                                 std::vector<std::pair<std::string, Tensor>> state,
                                                 const std::string& head) {
  require_head(kFamily, head, {""});
  Parameters params = f32_parameters(kFamily, std::move(state));
  return std::make_unique<Wav2Vec2BertModel>(std::move(config), std::move(params));
}

}  // namespace hfport::models
