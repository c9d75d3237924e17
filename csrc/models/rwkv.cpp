// RWKV-4, native. See rwkv.h for the computation, the rescaling, the cache and the mask.
//
// Activations are contiguous F32 [batch, L, width] throughout, the layout of the linear layers
// and of rwkv_wkv's k and v. The token shift and the time-mix interpolations, the sigmoid and the
// squared ReLU are elementwise loops here (one pass each over tensors the GEMMs around them
// dwarf); the norms, the projections and the WKV are hfport ops.
#include "models/rwkv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "models/decode_mask.h"
#include "models/decoder_head.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rwkv_wkv.h"

namespace hfport::models {

namespace {

// transformers' ln_out is nn.LayerNorm(hidden_size): torch's default eps.
constexpr double kOutputNormEps = 1e-5;
// The max of an empty WKV state, as transformers' rwkv_linear_attention_cpu starts it.
constexpr float kEmptyMax = -1e38f;

struct RwkvLayer {
  Tensor attn_norm_w, attn_norm_b, ffn_norm_w, ffn_norm_b;
  Tensor attn_mix_k, attn_mix_v, attn_mix_r, time_decay, time_first;
  Tensor attn_k, attn_v, attn_r, attn_out;
  Tensor ffn_mix_k, ffn_mix_r, ffn_up, ffn_r, ffn_down;
};

struct RwkvLayerState {
  Tensor attn_shift, ffn_shift;  // [batch, hidden] F32: the last attn_norm / ffn_norm outputs
  RwkvWkvState wkv;              // [batch, attention_hidden_size] F32 each
};

class RwkvCache final : public DecodeCache {
 public:
  RwkvCache(int64_t batch, int64_t layers, int64_t hidden, int64_t attention)
      : batch_(batch) {
    for (int64_t i = 0; i < layers; ++i) {
      RwkvLayerState s;
      s.attn_shift = Tensor::zeros(DType::F32, {batch, hidden});
      s.ffn_shift = Tensor::zeros(DType::F32, {batch, hidden});
      s.wkv.num = Tensor::zeros(DType::F32, {batch, attention});
      s.wkv.den = Tensor::zeros(DType::F32, {batch, attention});
      s.wkv.max = Tensor::empty(DType::F32, {batch, attention});
      std::fill_n(s.wkv.max.data_as<float>(), batch * attention, kEmptyMax);
      layers_.push_back(std::move(s));
    }
  }
  int64_t length() const override { return length_; }
  int64_t batch() const { return batch_; }
  std::vector<RwkvLayerState>& layers() { return layers_; }
  void advance(int64_t steps) { length_ += steps; }

 private:
  int64_t batch_;
  int64_t length_ = 0;
  std::vector<RwkvLayerState> layers_;
};

// The token shift and the time-mix interpolations of one block half: for each mix m,
// out[b, t] = a[b, t] * m + s[b, t] * (1 - m), with s[b, t] the last position before t that the
// mask keeps (every position without a mask), or `shift` (the cached last input; zeros without a
// cache) before the first. With `shift`, it is then set to the row's last kept position.
std::vector<Tensor> shift_and_mix(const Tensor& a, const Tensor& mask, Tensor* shift,
                                  const std::vector<const Tensor*>& mixes) {
  const int64_t batch = a.shape()[0], seq = a.shape()[1], width = a.shape()[2];
  std::vector<Tensor> outs;
  for (size_t j = 0; j < mixes.size(); ++j) outs.push_back(Tensor::empty(DType::F32, a.shape()));
  std::vector<float> zeros(static_cast<size_t>(width), 0.0f);
  std::vector<std::vector<float>> complement(mixes.size(), std::vector<float>(width));
  for (size_t j = 0; j < mixes.size(); ++j) {
    for (int64_t c = 0; c < width; ++c) complement[j][c] = 1.0f - mixes[j]->data_as<float>()[c];
  }
  parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float* previous = shift ? shift->data_as<float>() + b * width : zeros.data();
      for (int64_t t = 0; t < seq; ++t) {
        const float* row = a.data_as<float>() + (b * seq + t) * width;
        for (size_t j = 0; j < mixes.size(); ++j) {
          const float* mix = mixes[j]->data_as<float>();
          const float* rest = complement[j].data();
          float* out = outs[j].data_as<float>() + (b * seq + t) * width;
          for (int64_t c = 0; c < width; ++c) out[c] = row[c] * mix[c] + previous[c] * rest[c];
        }
        if (!mask.defined() || mask.data_as<uint8_t>()[b * seq + t] != 0) previous = row;
      }
      if (shift) {
        float* kept = shift->data_as<float>() + b * width;
        if (previous != kept) std::memcpy(kept, previous, static_cast<size_t>(width) * 4);
      }
    }
  });
  return outs;
}

void sigmoid_inplace(const Tensor& x) {
  float* p = x.data_as<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = 1.0f / (1.0f + std::exp(-p[i]));
}

void relu_squared_inplace(const Tensor& x) {
  float* p = x.data_as<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float r = p[i] > 0.0f ? p[i] : 0.0f;
    p[i] = r * r;
  }
}

// a *= b elementwise; both contiguous F32 of one shape.
void multiply_inplace(const Tensor& a, const Tensor& b) {
  float* p = a.data_as<float>();
  const float* q = b.data_as<float>();
  for (int64_t i = 0; i < a.numel(); ++i) p[i] *= q[i];
}

// A fresh copy of `weight` divided by `factor` (a power of two: exact).
Tensor divided(const Tensor& weight, float factor) {
  Tensor out = weight.clone();
  float* p = out.data_as<float>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] /= factor;
  return out;
}

class RwkvModel final : public Model {
 public:
  RwkvModel(std::string family, nlohmann::json config, const Parameters& params,
            const std::string& head)
      : family_(std::move(family)), config_(std::move(config)) {
    hidden_ = config_int(family_, config_, "hidden_size");
    vocab_ = config_int(family_, config_, "vocab_size");
    attention_ = config_int(family_, config_, "attention_hidden_size");
    eps_ = config_number(family_, config_, "layer_norm_epsilon", 1e-5);
    const double rescale = config_number(family_, config_, "rescale_every", 6.0);
    if (rescale != std::floor(rescale)) {
      throw ConfigError("native " + family_ + " model: config.json 'rescale_every' must be an "
                        "integer, got " + config_["rescale_every"].dump());
    }
    rescale_every_ = static_cast<int64_t>(rescale);
    const int64_t n_layers = config_int(family_, config_, "num_hidden_layers");
    for (int64_t i = 0; i < n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      RwkvLayer l;
      l.attn_norm_w = params.get(p + "attn_norm.weight");
      l.attn_norm_b = params.get(p + "attn_norm.bias");
      l.ffn_norm_w = params.get(p + "ffn_norm.weight");
      l.ffn_norm_b = params.get(p + "ffn_norm.bias");
      l.attn_mix_k = params.get(p + "attn_mix_k").contiguous();
      l.attn_mix_v = params.get(p + "attn_mix_v").contiguous();
      l.attn_mix_r = params.get(p + "attn_mix_r").contiguous();
      l.time_decay = params.get(p + "attn_time_decay");
      l.time_first = params.get(p + "attn_time_first");
      l.attn_k = params.get(p + "attn_k.weight");
      l.attn_v = params.get(p + "attn_v.weight");
      l.attn_r = params.get(p + "attn_r.weight");
      l.ffn_mix_k = params.get(p + "ffn_mix_k").contiguous();
      l.ffn_mix_r = params.get(p + "ffn_mix_r").contiguous();
      l.ffn_up = params.get(p + "ffn_up.weight");
      l.ffn_r = params.get(p + "ffn_r.weight");
      const Tensor& attn_out = params.get(p + "attn_out.weight");
      const Tensor& ffn_down = params.get(p + "ffn_down.weight");
      if (rescale_every_ > 0) {
        const float factor = std::ldexp(1.0f, static_cast<int>(i / rescale_every_));
        l.attn_out = divided(attn_out, factor);
        l.ffn_down = divided(ffn_down, factor);
      } else {
        l.attn_out = attn_out;
        l.ffn_down = ffn_down;
      }
      layers_.push_back(std::move(l));
    }
    tok_embd_ = params.get("tok_embd.weight");
    embd_norm_w_ = params.get("embd_norm.weight");
    embd_norm_b_ = params.get("embd_norm.bias");
    output_norm_w_ = params.get("output_norm.weight");
    output_norm_b_ = params.get("output_norm.bias");
    head_ = DecoderHead(family_, head, params, config_);
  }

  std::string family() const override { return family_; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(family_, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(family_, attention_mask, ids.shape());
    ModelOutput out = run(ids, mask, nullptr, output_hidden_states);
    head_.apply(out.last_hidden_state, ids, out);
    return out;
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t batch, int64_t) const override {
    if (batch < 1) {
      throw ArgumentError("native " + family_ + " model: cache batch must be >= 1, got " +
                          std::to_string(batch));
    }
    return std::make_unique<RwkvCache>(batch, static_cast<int64_t>(layers_.size()), hidden_,
                                       attention_);
  }

  Tensor forward_cached(const Tensor& input_ids, const Tensor& attention_mask,
                        DecodeCache& cache) override {
    const Tensor ids = checked_token_ids(family_, input_ids, vocab_);
    RwkvCache* own = &own_cache<RwkvCache>(family_, cache, ids.shape()[0]);
    // The cached positions are in the state already; only the new columns can skip anything.
    const int64_t seq = ids.shape()[1];
    const Tensor mask =
        checked_decode_mask(family_, attention_mask, ids.shape()[0], own->length(), seq);
    Tensor new_mask;
    if (mask.defined() && !last_columns_all_tokens(mask, seq)) {
      new_mask = mask.slice(1, own->length(), mask.shape()[1]).contiguous();
    }
    Tensor logits = head_.lm_logits(run(ids, new_mask, own, false).last_hidden_state);
    own->advance(seq);
    return logits;
  }

 private:
  ModelOutput run(const Tensor& ids, const Tensor& mask, RwkvCache* cache, bool keep_hidden) {
    ModelOutput out;
    Tensor x = embedding_rows(tok_embd_, ids);
    x = layer_norm(x, embd_norm_w_, embd_norm_b_, eps_);
    for (size_t i = 0; i < layers_.size(); ++i) {
      RwkvLayerState* state = cache ? &cache->layers()[i] : nullptr;
      block(layers_[i], x, mask, state);
      const auto index = static_cast<int64_t>(i);
      if (rescale_every_ > 0 && (index + 1) % rescale_every_ == 0) {
        float* p = x.data_as<float>();
        for (int64_t j = 0; j < x.numel(); ++j) p[j] /= 2.0f;
      }
      if (keep_hidden) out.hidden_states.push_back(x.clone());
    }
    x = layer_norm(x, output_norm_w_, output_norm_b_, kOutputNormEps);
    if (keep_hidden) out.hidden_states.push_back(x);
    out.last_hidden_state = x;
    return out;
  }

  // One block on x [batch, L, hidden], in place.
  void block(const RwkvLayer& l, Tensor& x, const Tensor& mask, RwkvLayerState* state) const {
    const Tensor a = layer_norm(x, l.attn_norm_w, l.attn_norm_b, eps_);
    const std::vector<Tensor> mixed =
        shift_and_mix(a, mask, state ? &state->attn_shift : nullptr,
                      {&l.attn_mix_k, &l.attn_mix_v, &l.attn_mix_r});
    const Tensor k = linear(mixed[0], l.attn_k);
    const Tensor v = linear(mixed[1], l.attn_v);
    const Tensor r = linear(mixed[2], l.attn_r);
    sigmoid_inplace(r);
    Tensor wkv;
    const int64_t seq = x.shape()[1];
    if (state != nullptr && seq == 1 && !mask.defined()) {
      wkv = rwkv_wkv_update(state->wkv, l.time_decay, l.time_first, k.select(1, 0), v.select(1, 0))
                .view(k.shape());
    } else {
      RwkvWkvOptions options;
      options.mask = mask;
      if (state) options.state = state->wkv;
      RwkvWkvResult result = rwkv_wkv(l.time_decay, l.time_first, k, v, options);
      if (state) state->wkv = result.state;
      wkv = result.out;
    }
    multiply_inplace(wkv, r);  // r * wkv
    add_inplace(x, linear(wkv, l.attn_out));

    const Tensor f = layer_norm(x, l.ffn_norm_w, l.ffn_norm_b, eps_);
    const std::vector<Tensor> fmixed = shift_and_mix(
        f, mask, state ? &state->ffn_shift : nullptr, {&l.ffn_mix_k, &l.ffn_mix_r});
    const Tensor up = linear(fmixed[0], l.ffn_up);
    relu_squared_inplace(up);
    const Tensor down = linear(up, l.ffn_down);
    const Tensor gate = linear(fmixed[1], l.ffn_r);
    sigmoid_inplace(gate);
    multiply_inplace(down, gate);  // sigmoid(r) * value
    add_inplace(x, down);
  }

  std::string family_;
  nlohmann::json config_;
  Tensor tok_embd_, embd_norm_w_, embd_norm_b_, output_norm_w_, output_norm_b_;
  DecoderHead head_;
  std::vector<RwkvLayer> layers_;
  int64_t hidden_ = 0, vocab_ = 0, attention_ = 0, rescale_every_ = 0;
  double eps_ = 1e-5;
};

}  // namespace

std::unique_ptr<Model> build_rwkv_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head) {
  require_head("rwkv", head, {"", "causal_lm"});
  return std::make_unique<RwkvModel>("rwkv", std::move(config),
                                     f32_parameters("rwkv", std::move(state)), head);
}

std::unique_ptr<Model> build_rwkv_original_model(nlohmann::json config,
                                                 std::vector<std::pair<std::string, Tensor>> state,
                                                 const std::string& head) {
  require_head("rwkv_original", head, {""});
  return std::make_unique<RwkvModel>("rwkv_original", std::move(config),
                                     f32_parameters("rwkv_original", std::move(state)),
                                     "causal_lm");
}

}  // namespace hfport::models
