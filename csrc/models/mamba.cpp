// Mamba-1, native. See mamba.h for the computation and the cache.
//
// Layouts: activations between kernels are [batch, L, channels] row major, the layout the linear
// layers want. The conv and the scan read [batch, d_inner, L]; they take strided views of the
// linear outputs (a transposed view costs nothing, the kernels gather along their strides), and
// the two places that need the other layout in memory (the conv output feeding x_proj, the scan
// output feeding out_proj) make one transposed copy each.
#include "models/mamba.h"

#include <algorithm>
#include <cstring>

#include "core/device_copy.h"
#include "core/error.h"
#include "models/decode_mask.h"
#include "models/decoder_head.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "ops/causal_conv1d.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/selective_scan.h"

namespace hfport::models {

namespace {

const std::string kFamily = "mamba";

// [a, b, c] viewed as [a, c, b] (no copy).
Tensor swap_last_two(const Tensor& t) {
  return Tensor(t.storage(), t.byte_offset(), t.dtype(), {t.shape()[0], t.shape()[2], t.shape()[1]},
                {t.strides()[0], t.strides()[2], t.strides()[1]});
}

// A contiguous copy of swap_last_two(t), on t's device.
Tensor transposed_copy(const Tensor& t) { return contiguous_copy(swap_last_two(t)); }

struct MambaLayer {
  Tensor norm, in_w, in_b, conv_w, conv_b, x_dbc_w, dt_w, dt_b, a, d, out_w, out_b;
};

struct MambaLayerState {
  Tensor conv;  // [batch, d_inner, conv_kernel] F32: the last inputs of the conv
  Tensor ssm;   // [batch, d_inner, N] F32
};

class MambaCache final : public DecodeCache {
 public:
  MambaCache(int64_t batch, int64_t layers, int64_t d_inner, int64_t kernel, int64_t n_state,
             const Device& device)
      : batch_(batch) {
    for (int64_t i = 0; i < layers; ++i) {
      layers_.push_back({zeros_on(DType::F32, {batch, d_inner, kernel}, device),
                         zeros_on(DType::F32, {batch, d_inner, n_state}, device)});
    }
  }
  int64_t length() const override { return length_; }
  int64_t batch() const { return batch_; }
  std::vector<MambaLayerState>& layers() { return layers_; }
  void advance(int64_t steps) { length_ += steps; }

 private:
  int64_t batch_;
  int64_t length_ = 0;
  std::vector<MambaLayerState> layers_;
};

class MambaModel final : public Model {
 public:
  // `params` is read here only: once the layers hold their tensors (and, on a GPU, device
  // copies of them), the host state goes.
  MambaModel(nlohmann::json config, const Parameters& params, const Device& device,
             const std::string& head)
      : config_(std::move(config)), device_(device) {
    hidden_ = config_int(kFamily, config_, "hidden_size");
    vocab_ = config_int(kFamily, config_, "vocab_size");
    d_inner_ = config_int(kFamily, config_, "intermediate_size");
    n_state_ = config_int(kFamily, config_, "state_size");
    dt_rank_ = config_int(kFamily, config_, "time_step_rank");
    kernel_ = config_int(kFamily, config_, "conv_kernel");
    eps_ = config_number(kFamily, config_, "layer_norm_epsilon", 1e-5);
    const std::string act = config_.value("hidden_act", std::string("silu"));
    if (act != "silu" && act != "swish") {
      throw ConfigError("native mamba model: hidden_act '" + act + "' is not supported (the conv "
                        "activation is silu in every Mamba checkpoint; transformers' kernels "
                        "assume it too)");
    }
    const int64_t n_layers = config_int(kFamily, config_, "num_hidden_layers");
    for (int64_t i = 0; i < n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      MambaLayer layer;
      layer.norm = params.get(p + "norm.weight");
      layer.in_w = params.get(p + "ssm_in.weight");
      if (const Tensor* b = params.find(p + "ssm_in.bias")) layer.in_b = *b;
      layer.conv_w = params.get(p + "ssm_conv1d.weight");
      if (const Tensor* b = params.find(p + "ssm_conv1d.bias")) layer.conv_b = *b;
      layer.x_dbc_w = fused_x_proj(params, p);
      layer.dt_w = params.get(p + "ssm_dt.weight");
      layer.dt_b = params.get(p + "ssm_dt.bias");
      layer.a = params.get(p + "ssm_a");
      layer.d = params.get(p + "ssm_d");
      layer.out_w = params.get(p + "ssm_out.weight");
      if (const Tensor* b = params.find(p + "ssm_out.bias")) layer.out_b = *b;
      layers_.push_back(std::move(layer));
    }
    tok_embd_ = params.get("tok_embd.weight");
    output_norm_ = params.get("output_norm.weight");
    head_ = DecoderHead(kFamily, head, params, config_);
    place_on_device();
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                      bool output_hidden_states) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    const Tensor mask = checked_attention_mask(kFamily, attention_mask, ids.shape());
    // On the model's device once: every layer masks rows twice.
    ModelOutput out = run(ids, mask.defined() ? to_device(mask, device_) : Tensor(), nullptr,
                          output_hidden_states);
    head_.apply(out.last_hidden_state, ids, out);
    return out;
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t batch, int64_t) const override {
    if (batch < 1) throw ArgumentError("native mamba model: cache batch must be >= 1");
    return std::make_unique<MambaCache>(batch, static_cast<int64_t>(layers_.size()), d_inner_,
                                        kernel_, n_state_, device_);
  }

  Tensor forward_cached(const Tensor& input_ids, const Tensor& attention_mask,
                        DecodeCache& cache) override {
    const Tensor ids = checked_token_ids(kFamily, input_ids, vocab_);
    MambaCache* mamba_cache = &own_cache<MambaCache>(kFamily, cache, ids.shape()[0]);
    // Only the new tokens' columns mask anything: the state already holds the cached ones. A
    // generate step's column is all ones, so after the prompt nothing is masked, as in
    // transformers, whose Mamba drops the mask after the first step.
    const int64_t seq = ids.shape()[1];
    const Tensor mask = checked_decode_mask(kFamily, attention_mask, ids.shape()[0],
                                            mamba_cache->length(), seq);
    Tensor new_rows_mask;
    if (mask.defined() && !last_columns_all_tokens(mask, seq)) {
      new_rows_mask = to_device(mask.slice(1, mamba_cache->length(), mask.shape()[1]).contiguous(),
                                device_);
    }
    Tensor logits = head_.lm_logits(run(ids, new_rows_mask, mamba_cache, false).last_hidden_state);
    mamba_cache->advance(seq);
    return logits;
  }

 private:
  // The parameters are prepared on the host (widened to F32, x_proj fused) and moved to the
  // model's device once.
  void place_on_device() {
    std::vector<Tensor*> tensors = head_.tensors();
    tensors.push_back(&tok_embd_);
    tensors.push_back(&output_norm_);
    for (MambaLayer& layer : layers_) {
      for (Tensor* t : {&layer.norm, &layer.in_w, &layer.in_b, &layer.conv_w, &layer.conv_b,
                        &layer.x_dbc_w, &layer.dt_w, &layer.dt_b, &layer.a, &layer.d,
                        &layer.out_w, &layer.out_b}) {
        tensors.push_back(t);
      }
    }
    move_parameters(tensors, device_);
  }

  // x_proj's dt / B / C rows in one [dt_rank + 2N, d_inner] matrix: one GEMM instead of three.
  Tensor fused_x_proj(const Parameters& params, const std::string& prefix) const {
    const Tensor parts[3] = {params.get(prefix + "ssm_x_dt.weight").contiguous(),
                             params.get(prefix + "ssm_x_b.weight").contiguous(),
                             params.get(prefix + "ssm_x_c.weight").contiguous()};
    Tensor fused = Tensor::empty(DType::F32, {dt_rank_ + 2 * n_state_, d_inner_});
    std::byte* dst = fused.data();
    for (const Tensor& part : parts) {
      std::memcpy(dst, part.data(), part.nbytes());
      dst += part.nbytes();
    }
    return fused;
  }

  ModelOutput run(const Tensor& ids, const Tensor& mask, MambaCache* cache, bool keep_hidden) {
    ModelOutput out;
    Tensor x = embedding_rows(tok_embd_, ids);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const MambaLayer& layer = layers_[i];
      Tensor h = rms_norm(x, layer.norm, eps_).out;
      if (mask.defined()) mask_rows_inplace(h, mask);
      MambaLayerState* state = cache ? &cache->layers()[i] : nullptr;
      const bool continuing = cache != nullptr && cache->length() > 0;
      Tensor mixed = mixer(layer, h, mask, state, continuing);
      add_inplace(mixed, x);  // residual + mixer output, the sum transformers forms
      x = std::move(mixed);
      if (keep_hidden) out.hidden_states.push_back(x);
    }
    x = rms_norm(x, output_norm_, eps_).out;
    if (keep_hidden) out.hidden_states.push_back(x);
    out.last_hidden_state = x;  // the head's input (decoder_head.h)
    return out;
  }

  // h [batch, L, hidden] -> [batch, L, hidden]. With `state` the conv and SSM states are kept
  // (continuing: read first, as the cached steps of transformers' generate do).
  Tensor mixer(const MambaLayer& layer, const Tensor& h, const Tensor& mask, MambaLayerState* state,
               bool continuing) const {
    const int64_t batch = h.shape()[0], seq = h.shape()[1];
    const Tensor xz = linear(h, layer.in_w, layer.in_b);  // [batch, L, 2 d_inner]
    const Tensor x_bdl = swap_last_two(xz.slice(2, 0, d_inner_));
    const Tensor z_bdl = swap_last_two(xz.slice(2, d_inner_, 2 * d_inner_));

    Tensor conv;  // [batch, d_inner, L]
    if (continuing) {
      conv = causal_conv1d_update(x_bdl, state->conv, layer.conv_w, layer.conv_b,
                                  ConvActivation::Silu);
    } else {
      conv = causal_conv1d(x_bdl, layer.conv_w, layer.conv_b, ConvActivation::Silu);
      if (state) keep_conv_inputs(x_bdl, state->conv);
    }
    Tensor x_bld = transposed_copy(conv);  // [batch, L, d_inner]
    if (mask.defined()) mask_rows_inplace(x_bld, mask);

    const int64_t n_dbc = dt_rank_ + 2 * n_state_;
    const Tensor dbc = linear(x_bld, layer.x_dbc_w);  // [batch, L, dt_rank + 2N]
    const Tensor delta = linear(dbc.slice(2, 0, dt_rank_), layer.dt_w);  // [batch, L, d_inner]
    const Tensor b_bnl = swap_last_two(dbc.slice(2, dt_rank_, dt_rank_ + n_state_));
    const Tensor c_bnl = swap_last_two(dbc.slice(2, dt_rank_ + n_state_, n_dbc));

    Tensor y_bld;  // [batch, L, d_inner]
    if (continuing) {
      y_bld = Tensor::empty(DType::F32, {batch, seq, d_inner_}, device_);
      SelectiveStateUpdateOptions options;
      options.D = layer.d;
      options.dt_bias = layer.dt_b;
      options.dt_softplus = true;
      for (int64_t t = 0; t < seq; ++t) {
        options.z = z_bdl.select(2, t);
        const Tensor y = selective_state_update(state->ssm, x_bld.select(1, t), delta.select(1, t),
                                                layer.a, b_bnl.select(2, t), c_bnl.select(2, t),
                                                options);
        if (device_.type == DeviceType::CUDA) {
          copy_into(y, y_bld.select(1, t));
          continue;
        }
        for (int64_t b = 0; b < batch; ++b) {
          std::memcpy(y_bld.data_as<float>() + (b * seq + t) * d_inner_,
                      y.data_as<float>() + b * d_inner_, static_cast<size_t>(d_inner_) * 4);
        }
      }
    } else {
      SelectiveScanOptions options;
      options.D = layer.d;
      options.z = z_bdl;
      options.delta_bias = layer.dt_b;
      options.delta_softplus = true;
      options.return_last_state = state != nullptr;
      // u is the masked conv output (x_bld); without a mask, the conv output as it came.
      const Tensor u = mask.defined() ? swap_last_two(x_bld) : conv;
      SelectiveScanResult scan =
          selective_scan(u, swap_last_two(delta), layer.a, b_bnl, c_bnl, options);
      if (state) state->ssm = scan.last_state;
      y_bld = transposed_copy(scan.out);
    }
    return linear(y_bld, layer.out_w, layer.out_b);
  }

  // The conv state after a full sequence: its last `kernel` inputs, zeros before the start
  // (transformers pads the prompt on the left to conv_kernel columns).
  void keep_conv_inputs(const Tensor& x_bdl, Tensor& conv_state) const {
    const int64_t seq = x_bdl.shape()[2];
    const int64_t kept = std::min(seq, kernel_);
    if (device_.type == DeviceType::CUDA) {  // a strided copy into the state's last columns
      conv_state = zeros_on(DType::F32, conv_state.shape(), device_);
      copy_into(x_bdl.slice(2, seq - kept, seq), conv_state.slice(2, kernel_ - kept, kernel_));
      return;
    }
    std::memset(conv_state.data(), 0, conv_state.nbytes());
    const Tensor packed = x_bdl.slice(2, seq - kept, seq).contiguous();  // [batch, d_inner, kept]
    const int64_t rows = packed.shape()[0] * packed.shape()[1];
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(conv_state.data_as<float>() + r * kernel_ + (kernel_ - kept),
                  packed.data_as<float>() + r * kept, static_cast<size_t>(kept) * 4);
    }
  }

  nlohmann::json config_;
  Device device_;
  Tensor tok_embd_, output_norm_;
  DecoderHead head_;
  std::vector<MambaLayer> layers_;
  int64_t hidden_ = 0, vocab_ = 0, d_inner_ = 0, n_state_ = 0, dt_rank_ = 0, kernel_ = 0;
  double eps_ = 1e-5;
};

}  // namespace

std::unique_ptr<Model> build_mamba_model(nlohmann::json config,
                                         std::vector<std::pair<std::string, Tensor>> state,
                                         const Device& device, const std::string& head) {
  require_head(kFamily, head, {"", "causal_lm"});
  return std::make_unique<MambaModel>(std::move(config), f32_parameters(kFamily, std::move(state)),
                                      device, head);
}

}  // namespace hfport::models
