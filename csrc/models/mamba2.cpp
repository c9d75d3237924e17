// Mamba-2, native. See mamba2.h for the computation and the cache.
//
// Layouts: activations between kernels are [batch, L, channels] row major, the layout the linear
// layers want, and the SSD scan reads its x, dt, B and C as strided views of them ([batch, L, H,
// P] and [batch, L, G, N] are the same bytes as [batch, L, H * P] and [batch, L, G * N]). Only the
// conv works across time on [batch, channels, L]: it reads a transposed view of in_proj's output
// and one transposed copy brings its result back.
#include "models/mamba2.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "models/decode_mask.h"
#include "models/decoder_head.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/causal_conv1d.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/ssd_scan.h"

namespace hfport::models {

namespace {

const std::string kFamily = "mamba2";

// [a, b, c] viewed as [a, c, b] (no copy).
Tensor swap_last_two(const Tensor& t) {
  return Tensor(t.storage(), t.byte_offset(), t.dtype(), {t.shape()[0], t.shape()[2], t.shape()[1]},
                {t.strides()[0], t.strides()[2], t.strides()[1]});
}

// A [a, b, c * d] view (last stride 1) seen as [a, b, c, d] (no copy).
Tensor split_last(const Tensor& t, int64_t c, int64_t d) {
  return Tensor(t.storage(), t.byte_offset(), t.dtype(), {t.shape()[0], t.shape()[1], c, d},
                {t.strides()[0], t.strides()[1], d * t.strides()[2], t.strides()[2]});
}

// One bound of time_step_limit: a number, or transformers' {"__float__": "Infinity"} (how its
// config serialisation writes a float JSON cannot hold).
double limit_value(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_object() && v.size() == 1 && v.contains("__float__") && v["__float__"].is_string()) {
    const std::string text = v["__float__"].get<std::string>();
    if (text == "Infinity") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  throw ConfigError("native mamba2 model: config.json 'time_step_limit' must hold two numbers "
                    "(or {\"__float__\": \"Infinity\"}), got " + v.dump());
}

std::pair<double, double> time_step_limit(const nlohmann::json& config) {
  const auto it = config.find("time_step_limit");
  if (it == config.end() || it->is_null()) {
    return {0.0, std::numeric_limits<double>::infinity()};
  }
  if (!it->is_array() || it->size() != 2) {
    throw ConfigError("native mamba2 model: config.json 'time_step_limit' must be [min, max], "
                      "got " + it->dump());
  }
  const double lo = limit_value((*it)[0]), hi = limit_value((*it)[1]);
  if (!(lo <= hi)) {
    throw ConfigError("native mamba2 model: config.json 'time_step_limit' must have min <= max, "
                      "got " + it->dump());
  }
  return {lo, hi};
}

struct Mamba2Layer {
  Tensor norm, in_w, in_b, conv_w, conv_b, dt_bias, a, d, gate_norm, out_w, out_b;
};

struct Mamba2LayerState {
  Tensor conv;  // [batch, conv_dim, conv_kernel] F32: the last inputs of the conv
  Tensor ssm;   // [batch, H, P, N] F32
};

class Mamba2Cache final : public DecodeCache {
 public:
  Mamba2Cache(int64_t batch, int64_t layers, int64_t conv_dim, int64_t kernel, int64_t heads,
              int64_t head_dim, int64_t n_state)
      : batch_(batch) {
    for (int64_t i = 0; i < layers; ++i) {
      layers_.push_back({Tensor::zeros(DType::F32, {batch, conv_dim, kernel}),
                         Tensor::zeros(DType::F32, {batch, heads, head_dim, n_state})});
    }
  }
  int64_t length() const override { return length_; }
  int64_t batch() const { return batch_; }
  std::vector<Mamba2LayerState>& layers() { return layers_; }
  void advance(int64_t steps) { length_ += steps; }

 private:
  int64_t batch_;
  int64_t length_ = 0;
  std::vector<Mamba2LayerState> layers_;
};

class Mamba2Model final : public Model {
 public:
  Mamba2Model(nlohmann::json config, const Parameters& params, const std::string& head)
      : config_(std::move(config)) {
    hidden_ = config_int(kFamily, config_, "hidden_size");
    vocab_ = config_int(kFamily, config_, "vocab_size");
    heads_ = config_int(kFamily, config_, "num_heads");
    head_dim_ = config_int(kFamily, config_, "head_dim");
    n_state_ = config_int(kFamily, config_, "state_size");
    n_groups_ = config_int(kFamily, config_, "n_groups");
    kernel_ = config_int(kFamily, config_, "conv_kernel");
    chunk_size_ = config_int(kFamily, config_, "chunk_size");
    eps_ = config_number(kFamily, config_, "layer_norm_epsilon", 1e-5);
    std::tie(dt_min_, dt_max_) = time_step_limit(config_);
    const std::string act = config_.value("hidden_act", std::string("silu"));
    if (act != "silu" && act != "swish") {
      throw ConfigError("native mamba2 model: hidden_act '" + act + "' is not supported (the "
                        "conv activation is silu in every Mamba-2 checkpoint)");
    }
    d_inner_ = heads_ * head_dim_;
    conv_dim_ = d_inner_ + 2 * n_groups_ * n_state_;
    if (n_groups_ < 1 || heads_ % n_groups_ != 0) {
      throw ConfigError("native mamba2 model: n_groups = " + std::to_string(n_groups_) +
                        " must be >= 1 and divide num_heads = " + std::to_string(heads_));
    }
    if (chunk_size_ < 1) {
      throw ConfigError("native mamba2 model: chunk_size must be >= 1, got " +
                        std::to_string(chunk_size_));
    }
    const int64_t n_layers = config_int(kFamily, config_, "num_hidden_layers");
    for (int64_t i = 0; i < n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      Mamba2Layer layer;
      layer.norm = params.get(p + "norm.weight");
      layer.in_w = params.get(p + "ssm_in.weight");
      if (const Tensor* b = params.find(p + "ssm_in.bias")) layer.in_b = *b;
      layer.conv_w = params.get(p + "ssm_conv1d.weight");
      if (const Tensor* b = params.find(p + "ssm_conv1d.bias")) layer.conv_b = *b;
      layer.dt_bias = params.get(p + "ssm_dt.bias");
      layer.a = params.get(p + "ssm_a");
      layer.d = params.get(p + "ssm_d");
      layer.gate_norm = params.get(p + "ssm_norm.weight");
      layer.out_w = params.get(p + "ssm_out.weight");
      if (const Tensor* b = params.find(p + "ssm_out.bias")) layer.out_b = *b;
      // The spec checks the projections against expand * hidden_size; the heads must tile it.
      if (layer.gate_norm.shape()[0] != d_inner_) {
        throw ConfigError("native mamba2 model: num_heads * head_dim = " +
                          std::to_string(d_inner_) + " must equal expand * hidden_size = " +
                          std::to_string(layer.gate_norm.shape()[0]));
      }
      layers_.push_back(std::move(layer));
    }
    tok_embd_ = params.get("tok_embd.weight");
    output_norm_ = params.get("output_norm.weight");
    head_ = DecoderHead(kFamily, head, params, config_);
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, ids.shape());
    ModelOutput out = run(ids, mask, nullptr, output_hidden_states);
    head_.apply(out.last_hidden_state, ids, out);
    return out;
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t batch, int64_t) const override {
    if (batch < 1) {
      throw ArgumentError("native mamba2 model: cache batch must be >= 1, got " +
                          std::to_string(batch));
    }
    return std::make_unique<Mamba2Cache>(batch, static_cast<int64_t>(layers_.size()), conv_dim_,
                                         kernel_, heads_, head_dim_, n_state_);
  }

  Tensor forward_cached(const Tensor& input_ids, const Tensor& attention_mask,
                        DecodeCache& cache) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    Mamba2Cache* own = &own_cache<Mamba2Cache>(kFamily, cache, ids.shape()[0]);
    // Only the new tokens' columns mask anything: the states already hold the cached ones.
    const int64_t seq = ids.shape()[1];
    const Tensor mask =
        checked_decode_mask(kFamily, attention_mask, ids.shape()[0], own->length(), seq);
    Tensor new_rows_mask;
    if (mask.defined() && !last_columns_all_tokens(mask, seq)) {
      new_rows_mask = mask.slice(1, own->length(), mask.shape()[1]).contiguous();
    }
    Tensor logits = head_.lm_logits(run(ids, new_rows_mask, own, false).last_hidden_state);
    own->advance(seq);
    return logits;
  }

 private:
  ModelOutput run(const Tensor& ids, const Tensor& mask, Mamba2Cache* cache, bool keep_hidden) {
    ModelOutput out;
    Tensor x = embedding_rows(tok_embd_, ids);
    const bool continuing = cache != nullptr && cache->length() > 0;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Mamba2Layer& layer = layers_[i];
      Tensor h = rms_norm(x, layer.norm, eps_).out;
      if (mask.defined()) mask_rows_inplace(h, mask);
      Mamba2LayerState* state = cache ? &cache->layers()[i] : nullptr;
      Tensor mixed = mixer(layer, h, mask, state, continuing);
      add_inplace(mixed, x);  // residual + mixer output, the sum transformers forms
      x = std::move(mixed);
      if (keep_hidden) out.hidden_states.push_back(x);
    }
    x = rms_norm(x, output_norm_, eps_).out;
    if (keep_hidden) out.hidden_states.push_back(x);
    out.last_hidden_state = x;
    return out;
  }

  // h [batch, L, hidden] -> [batch, L, hidden]. With `state`, the conv and SSM states are kept
  // (continuing: read first).
  Tensor mixer(const Mamba2Layer& layer, const Tensor& h, const Tensor& mask,
               Mamba2LayerState* state, bool continuing) const {
    const int64_t batch = h.shape()[0], seq = h.shape()[1];
    const Tensor proj = linear(h, layer.in_w, layer.in_b);  // [batch, L, d_inner + conv_dim + H]
    const Tensor z = proj.slice(2, 0, d_inner_);
    const Tensor xbc_bcl = swap_last_two(proj.slice(2, d_inner_, d_inner_ + conv_dim_));
    const Tensor dt = proj.slice(2, d_inner_ + conv_dim_, d_inner_ + conv_dim_ + heads_);

    Tensor conv;  // [batch, conv_dim, L]
    if (continuing) {
      conv = causal_conv1d_update(xbc_bcl, state->conv, layer.conv_w, layer.conv_b,
                                  ConvActivation::Silu);
    } else {
      conv = causal_conv1d(xbc_bcl, layer.conv_w, layer.conv_b, ConvActivation::Silu);
      if (state) keep_conv_inputs(xbc_bcl, state->conv);
    }
    const Tensor xbc = contiguous_copy(swap_last_two(conv));  // [batch, L, conv_dim]
    if (mask.defined()) mask_rows_inplace(xbc, mask);
    const int64_t gn = n_groups_ * n_state_;
    const Tensor xs = split_last(xbc.slice(2, 0, d_inner_), heads_, head_dim_);
    const Tensor b = split_last(xbc.slice(2, d_inner_, d_inner_ + gn), n_groups_, n_state_);
    const Tensor c = split_last(xbc.slice(2, d_inner_ + gn, d_inner_ + 2 * gn), n_groups_, n_state_);

    Tensor y;  // [batch, L, d_inner]
    if (continuing && seq == 1) {
      SsdStateUpdateOptions options;
      options.D = layer.d;
      options.dt_bias = layer.dt_bias;
      options.dt_softplus = true;  // no clamp in a one-token step, as transformers (mamba2.h)
      y = ssd_state_update(state->ssm, xs.select(1, 0), dt.select(1, 0), layer.a, b.select(1, 0),
                           c.select(1, 0), options)
              .view({batch, 1, d_inner_});
    } else {
      SsdScanOptions options;
      options.chunk_size = chunk_size_;
      options.D = layer.d;
      options.dt_bias = layer.dt_bias;
      options.dt_softplus = true;
      options.dt_min = dt_min_;
      options.dt_max = dt_max_;
      if (continuing) options.initial_states = state->ssm;
      options.return_final_states = state != nullptr;
      SsdScanResult scan = ssd_scan(xs, dt, layer.a, b, c, options);
      if (state) state->ssm = scan.final_states;
      y = scan.out.view({batch, seq, d_inner_});
    }
    GatedRmsNormOptions norm_options;
    norm_options.gate = z;
    const Tensor normed = rms_norm_gated(y, layer.gate_norm, eps_, norm_options);
    return linear(normed, layer.out_w, layer.out_b);
  }

  // The conv state after a full sequence: its last `kernel` inputs, zeros before the start
  // (transformers pads the prompt on the left to conv_kernel columns).
  void keep_conv_inputs(const Tensor& x_bcl, Tensor& conv_state) const {
    const int64_t seq = x_bcl.shape()[2];
    const int64_t kept = std::min(seq, kernel_);
    std::memset(conv_state.data(), 0, conv_state.nbytes());
    const Tensor packed = x_bcl.slice(2, seq - kept, seq).contiguous();  // [batch, conv_dim, kept]
    const int64_t rows = packed.shape()[0] * packed.shape()[1];
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(conv_state.data_as<float>() + r * kernel_ + (kernel_ - kept),
                  packed.data_as<float>() + r * kept, static_cast<size_t>(kept) * 4);
    }
  }

  nlohmann::json config_;
  Tensor tok_embd_, output_norm_;
  DecoderHead head_;
  std::vector<Mamba2Layer> layers_;
  int64_t hidden_ = 0, vocab_ = 0, heads_ = 0, head_dim_ = 0, n_state_ = 0, n_groups_ = 0,
          kernel_ = 0, chunk_size_ = 0, d_inner_ = 0, conv_dim_ = 0;
  double eps_ = 1e-5, dt_min_ = 0.0, dt_max_ = 0.0;
};

}  // namespace

std::unique_ptr<Model> build_mamba2_model(nlohmann::json config,
                                          std::vector<std::pair<std::string, Tensor>> state,
                                          const std::string& head) {
  require_head(kFamily, head, {"", "causal_lm"});
  return std::make_unique<Mamba2Model>(std::move(config), f32_parameters(kFamily, std::move(state)),
                                       head);
}

}  // namespace hfport::models
