// Whisper, native. See whisper.h for the computation, the outputs and generate.
#include "models/whisper.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>

#include "core/cast.h"
#include "core/device_copy.h"
#include "core/error.h"
#include "models/model_inputs.h"
#include "models/parameters.h"
#include "models/token_choice.h"
#include "models/whisper_generation.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace hfport::models {

namespace {

const std::string kFamily = "whisper";
const std::string kWho = "native whisper model: ";
constexpr double kEps = 1e-5;  // nn.LayerNorm's default, which every Whisper norm uses

// [rows, a] and [rows, b] ... side by side: the rows of the fused q/k/v weight, with a zero bias
// where the projection has none (Whisper's k_proj).
Tensor concat_rows(const std::vector<Tensor>& parts) {
  int64_t rows = 0;
  for (const Tensor& t : parts) rows += t.shape()[0];
  Shape shape = parts.front().shape();
  shape[0] = rows;
  Tensor out = Tensor::empty(DType::F32, shape);
  size_t offset = 0;
  for (const Tensor& t : parts) {
    const Tensor c = t.contiguous();
    std::memcpy(out.data() + offset, c.data(), c.nbytes());
    offset += c.nbytes();
  }
  return out;
}

// A conv1d weight [out, in, 3] as [out, 3 * in], tap-major, to match unfold_taps' rows.
Tensor taps_major(const Tensor& weight) {
  const Tensor w = weight.contiguous();
  const int64_t out = w.shape()[0], in = w.shape()[1], taps = w.shape()[2];
  Tensor r = Tensor::empty(DType::F32, {out, taps * in});
  const float* src = w.data_as<float>();
  float* dst = r.data_as<float>();
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t c = 0; c < in; ++c) {
      for (int64_t k = 0; k < taps; ++k) dst[(o * taps + k) * in + c] = src[(o * in + c) * taps + k];
    }
  }
  return r;
}

// x [batch, length, channels] -> [batch, out_len, 3 * channels]: row t holds x[s - 1], x[s],
// x[s + 1] for s = stride * t, zeros past either end (kernel 3, padding 1).
Tensor unfold_taps(const Tensor& x, int64_t stride) {
  const int64_t batch = x.shape()[0], length = x.shape()[1], channels = x.shape()[2];
  const int64_t out_len = (length + 2 - 3) / stride + 1;
  Tensor cols = Tensor::empty(DType::F32, {batch, out_len, 3 * channels});
  const float* src = x.data_as<float>();
  float* dst = cols.data_as<float>();
  const size_t row_bytes = static_cast<size_t>(channels) * sizeof(float);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < out_len; ++t) {
      for (int64_t k = 0; k < 3; ++k) {
        const int64_t s = stride * t + k - 1;
        float* row = dst + ((b * out_len + t) * 3 + k) * channels;
        if (s < 0 || s >= length) {
          std::memset(row, 0, row_bytes);
        } else {
          std::memcpy(row, src + (b * length + s) * channels, row_bytes);
        }
      }
    }
  }
  return cols;
}

struct AttentionWeights {
  Tensor qkv_w, qkv_b;  // self-attention: [3 d, d] fused; cross: q alone ([d, d])
  Tensor k_w, v_w, v_b;  // cross-attention's k and v (run once per utterance)
  Tensor out_w, out_b, norm_w, norm_b;
};

struct WhisperLayer {
  AttentionWeights self, cross;
  Tensor ffn_norm_w, ffn_norm_b, up_w, up_b, down_w, down_b;
};

class WhisperCache final : public DecodeCache {
 public:
  WhisperCache(int64_t layers, int64_t batch, int64_t capacity, int64_t heads, int64_t head_dim)
      : batch_(batch), capacity_(capacity) {
    for (int64_t i = 0; i < layers; ++i) {
      k_.push_back(Tensor::empty(DType::F32, {batch, capacity, heads, head_dim}));
      v_.push_back(Tensor::empty(DType::F32, {batch, capacity, heads, head_dim}));
    }
    cross_k_.resize(static_cast<size_t>(layers));
    cross_v_.resize(static_cast<size_t>(layers));
  }
  int64_t length() const override { return length_; }
  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  void advance(int64_t steps) { length_ += steps; }
  std::vector<Tensor> k_, v_, cross_k_, cross_v_;  // cross: [batch, source, heads, head_dim]

 private:
  int64_t batch_, capacity_;
  int64_t length_ = 0;
};

class Whisper final : public WhisperModel {
 public:
  Whisper(nlohmann::json config, Parameters params, std::string head)
      : config_(std::move(config)), params_(std::move(params)), head_(std::move(head)) {
    d_ = config_int(kFamily, config_, "d_model");
    enc_heads_ = config_int(kFamily, config_, "encoder_attention_heads");
    dec_heads_ = config_int(kFamily, config_, "decoder_attention_heads");
    for (const auto& [heads, field] : {std::pair{enc_heads_, "encoder_attention_heads"},
                                       std::pair{dec_heads_, "decoder_attention_heads"}}) {
      if (heads <= 0 || d_ % heads != 0) {
        throw ConfigError(kWho + "d_model " + std::to_string(d_) + " is not a multiple of " +
                          field + " " + std::to_string(heads));
      }
    }
    mels_ = config_int(kFamily, config_, "num_mel_bins");
    sources_ = config_int(kFamily, config_, "max_source_positions");
    targets_ = config_int(kFamily, config_, "max_target_positions");
    vocab_ = config_int(kFamily, config_, "vocab_size");
    const std::string act = config_.value("activation_function", std::string("gelu"));
    if (act != "gelu") {
      throw ConfigError(kWho + "activation_function '" + act + "' is not supported (gelu)");
    }
    conv1_w_ = taps_major(params_.get("enc.conv1.weight"));
    conv2_w_ = taps_major(params_.get("enc.conv2.weight"));
    const int64_t enc_layers = config_int(kFamily, config_, "encoder_layers");
    const int64_t dec_layers = config_int(kFamily, config_, "decoder_layers");
    for (int64_t i = 0; i < enc_layers; ++i) encoder_.push_back(layer("enc.blk." + std::to_string(i) + ".", false));
    for (int64_t i = 0; i < dec_layers; ++i) decoder_.push_back(layer("dec.blk." + std::to_string(i) + ".", true));
    if (head_ == "conditional_generation") out_w_ = params_.get("dec.output.weight");
  }

  std::string family() const override { return kFamily; }
  const nlohmann::json& config() const override { return config_; }

  ModelOutput forward(const Tensor&, const Tensor&, bool) override {
    throw ArgumentError(kWho + "takes input_features (and decoder_input_ids), not input_ids alone");
  }

  WhisperOutput forward_features(const Tensor& input_features, const Tensor& decoder_input_ids,
                                 bool output_hidden_states) override {
    if (!decoder_input_ids.defined()) {
      throw ArgumentError(kWho + "decoder_input_ids is required (transformers derives them from "
                          "labels, which hfport does not take)");
    }
    WhisperOutput out;
    out.encoder_last_hidden_state =
        encode(input_features, output_hidden_states ? &out.encoder_hidden_states : nullptr);
    const Tensor ids = checked_token_ids(kFamily, decoder_input_ids, vocab_);
    if (ids.shape()[0] != out.encoder_last_hidden_state.shape()[0]) {
      throw ArgumentError(kWho + "decoder_input_ids has batch " + std::to_string(ids.shape()[0]) +
                          " but input_features has " +
                          std::to_string(out.encoder_last_hidden_state.shape()[0]));
    }
    WhisperCache cache = make_cache(ids.shape()[0], ids.shape()[1]);
    fill_cross(cache, out.encoder_last_hidden_state);
    out.last_hidden_state =
        decode(ids, cache, output_hidden_states ? &out.decoder_hidden_states : nullptr);
    if (out_w_.defined()) out.logits = linear(out.last_hidden_state, out_w_);
    return out;
  }

  Tensor decoder_prompt(const Tensor& input_features,
                        const WhisperGenerationOptions& options) override {
    require_generation_head();
    const Tensor features = checked_features(input_features);
    Tensor encoded;
    return prompt(features, options, encoded);
  }

  Tensor generate_features(const Tensor& input_features,
                           const WhisperGenerationOptions& options) override {
    require_generation_head();
    const Tensor features = checked_features(input_features);
    Tensor encoded;  // set by language detection when it runs
    const Tensor init = prompt(features, options, encoded);
    if (!encoded.defined()) encoded = encode(features, nullptr);
    const int64_t batch = init.shape()[0], prompt_len = init.shape()[1];
    const WhisperDecodingLimits limits = whisper_decoding_limits(
        generation_config(), prompt_len, targets_, options.max_new_tokens);

    WhisperCache cache = make_cache(batch, std::max(limits.total, prompt_len));
    fill_cross(cache, encoded);
    std::vector<std::vector<int64_t>> rows(static_cast<size_t>(batch));
    std::vector<bool> unfinished(static_cast<size_t>(batch), true);
    std::vector<double> scores(static_cast<size_t>(vocab_));
    Tensor next = init;
    for (int64_t length = prompt_len; length < limits.total; ++length) {
      const Tensor logits = last_logits(decode(next, cache, nullptr));  // [batch, vocab]
      next = Tensor::empty(DType::I64, {batch, 1});
      for (int64_t b = 0; b < batch; ++b) {
        // transformers' _sample: a finished row gets pad (from the next step on).
        int64_t token = limits.pad.value_or(0);
        if (unfinished[static_cast<size_t>(b)]) {
          const float* src = logits.data_as<float>() + b * vocab_;
          std::copy(src, src + vocab_, scores.begin());
          if (length == prompt_len) suppress_tokens(scores, limits.begin_suppress);
          suppress_tokens(scores, limits.suppress);
          token = first_argmax(scores);
          if (limits.eos && token == *limits.eos) unfinished[static_cast<size_t>(b)] = false;
        }
        next.data_as<int64_t>()[b] = token;
        rows[static_cast<size_t>(b)].push_back(token);
      }
      if (std::none_of(unfinished.begin(), unfinished.end(), [](bool u) { return u; })) break;
    }
    return whisper_finished_rows(std::move(rows), limits.eos, limits.pad);
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t, int64_t) const override {
    throw Error(kWho + "decodes through generate(input_features): its cache needs the encoder's "
                "output, which forward_cached has no argument for");
  }

 private:
  WhisperLayer layer(const std::string& p, bool decoder) const {
    WhisperLayer l;
    const auto attention = [&](const std::string& a, bool cross) {
      AttentionWeights w;
      const Tensor q_w = params_.get(p + a + "_q.weight"), q_b = params_.get(p + a + "_q.bias");
      const Tensor k_w = params_.get(p + a + "_k.weight");
      const Tensor v_w = params_.get(p + a + "_v.weight"), v_b = params_.get(p + a + "_v.bias");
      if (cross) {
        w.qkv_w = q_w;
        w.qkv_b = q_b;
        w.k_w = k_w;
        w.v_w = v_w;
        w.v_b = v_b;
      } else {
        w.qkv_w = concat_rows({q_w, k_w, v_w});
        w.qkv_b = concat_rows({q_b, Tensor::zeros(DType::F32, {d_}), v_b});
      }
      w.out_w = params_.get(p + a + "_out.weight");
      w.out_b = params_.get(p + a + "_out.bias");
      w.norm_w = params_.get(p + a + "_norm.weight");
      w.norm_b = params_.get(p + a + "_norm.bias");
      return w;
    };
    l.self = attention("attn", false);
    if (decoder) l.cross = attention("cross_attn", true);
    l.ffn_norm_w = params_.get(p + "ffn_norm.weight");
    l.ffn_norm_b = params_.get(p + "ffn_norm.bias");
    l.up_w = params_.get(p + "ffn_up.weight");
    l.up_b = params_.get(p + "ffn_up.bias");
    l.down_w = params_.get(p + "ffn_down.weight");
    l.down_b = params_.get(p + "ffn_down.bias");
    return l;
  }

  void require_generation_head() const {
    if (!out_w_.defined()) {
      throw Error(kWho + "generate needs the conditional_generation head (proj_out); this is the "
                  "base model (WhisperModel)");
    }
  }

  WhisperGenerationConfig generation_config() const {
    return WhisperGenerationConfig::read(generation_defaults(), config_);
  }

  // The logits of the last position of decoder states h [batch, seq, d]: [batch, vocab].
  Tensor last_logits(const Tensor& h) const {
    return linear(h.select(1, h.shape()[1] - 1).contiguous(), out_w_);
  }

  Tensor checked_features(const Tensor& input_features) const {
    if (!input_features.defined()) throw ArgumentError(kWho + "input_features is required");
    const Shape& s = input_features.shape();
    const int64_t frames = 2 * sources_;
    if (input_features.ndim() != 3 || s[0] < 1 || s[1] != mels_ || s[2] != frames) {
      throw ArgumentError(kWho + "input_features must be [batch, num_mel_bins, 2 * "
                          "max_source_positions] = [batch, " + std::to_string(mels_) + ", " +
                          std::to_string(frames) + "] (pad or truncate the audio to the model's "
                          "window, as the feature extractor does), got " + shape_to_string(s));
    }
    const DType dt = input_features.dtype();
    if (!dtype_is_floating(dt)) {
      throw ArgumentError(kWho + "input_features must be a float tensor, got " +
                          std::string(dtype_name(dt)));
    }
    const Tensor host = input_features.device().type == DeviceType::CPU
                            ? input_features
                            : to_device(input_features, Device{});
    return dt == DType::F32 ? host : cast(host.contiguous(), DType::F32);
  }

  // [batch, frames, mels] contiguous, the features' time-major copy for the first unfold.
  static Tensor time_major(const Tensor& features) {
    const int64_t batch = features.shape()[0], mels = features.shape()[1],
                  frames = features.shape()[2];
    Tensor x = Tensor::empty(DType::F32, {batch, frames, mels});
    const auto& st = features.strides();
    const float* src = features.data_as<float>();
    float* dst = x.data_as<float>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t c = 0; c < mels; ++c) {
        for (int64_t t = 0; t < frames; ++t) {
          dst[(b * frames + t) * mels + c] = src[b * st[0] + c * st[1] + t * st[2]];
        }
      }
    }
    return x;
  }

  Tensor encode(const Tensor& input_features, std::vector<Tensor>* hidden) const {
    const Tensor features = checked_features(input_features);
    Tensor x = gelu(linear(unfold_taps(time_major(features), 1), conv1_w_,
                           params_.get("enc.conv1.bias")), GeluApproximation::None);
    Tensor h = gelu(linear(unfold_taps(x, 2), conv2_w_, params_.get("enc.conv2.bias")),
                    GeluApproximation::None);
    add_inplace(h, broadcast_positions(h));
    if (hidden) hidden->push_back(h);
    for (size_t i = 0; i < encoder_.size(); ++i) {
      h = block(h, encoder_[i], enc_heads_, nullptr, nullptr, i);
      if (hidden && i + 1 < encoder_.size()) hidden->push_back(h);
    }
    h = layer_norm(h, params_.get("enc.output_norm.weight"), params_.get("enc.output_norm.bias"), kEps);
    if (hidden) hidden->push_back(h);
    return h;
  }

  // The position table repeated for every row of h [batch, sources, d].
  Tensor broadcast_positions(const Tensor& h) const {
    const Tensor table = params_.get("enc.pos_embd.weight").contiguous();
    const int64_t batch = h.shape()[0];
    Tensor pos = Tensor::empty(DType::F32, h.shape());
    for (int64_t b = 0; b < batch; ++b) {
      std::memcpy(pos.data() + static_cast<size_t>(b) * table.nbytes(), table.data(), table.nbytes());
    }
    return pos;
  }

  WhisperCache make_cache(int64_t batch, int64_t capacity) const {
    if (capacity > targets_) {
      throw ArgumentError(kWho + std::to_string(capacity) + " decoder positions but the model "
                          "has " + std::to_string(targets_) + " (max_target_positions)");
    }
    return WhisperCache(static_cast<int64_t>(decoder_.size()), batch, std::max<int64_t>(capacity, 1),
                        dec_heads_, d_ / dec_heads_);
  }

  // Cross-attention K and V of every decoder layer from the encoder output, once per utterance.
  void fill_cross(WhisperCache& cache, const Tensor& encoded) const {
    const int64_t batch = encoded.shape()[0], source = encoded.shape()[1];
    const Shape bshd = {batch, source, dec_heads_, d_ / dec_heads_};
    for (size_t i = 0; i < decoder_.size(); ++i) {
      cache.cross_k_[i] = linear(encoded, decoder_[i].cross.k_w).view(bshd);
      cache.cross_v_[i] = linear(encoded, decoder_[i].cross.v_w, decoder_[i].cross.v_b).view(bshd);
    }
  }

  // The decoder on `ids` after the cache's tokens; returns the final-normed hidden states.
  Tensor decode(const Tensor& ids, WhisperCache& cache, std::vector<Tensor>* hidden) const {
    const int64_t batch = ids.shape()[0], seq = ids.shape()[1], past = cache.length();
    if (past + seq > cache.capacity()) {
      throw ArgumentError(kWho + "positions up to " + std::to_string(past + seq - 1) +
                          " but the model has " + std::to_string(targets_) +
                          " learned positions (max_target_positions)");
    }
    Tensor h = embedding_rows(params_.get("dec.tok_embd.weight"), ids);
    const Tensor pos = params_.get("dec.pos_embd.weight").contiguous();
    float* x = h.data_as<float>();
    const float* table = pos.data_as<float>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < seq; ++s) {
        float* row = x + (b * seq + s) * d_;
        const float* p = table + (past + s) * d_;
        for (int64_t c = 0; c < d_; ++c) row[c] += p[c];
      }
    }
    if (hidden) hidden->push_back(h);
    for (size_t i = 0; i < decoder_.size(); ++i) {
      h = block(h, decoder_[i], dec_heads_, &cache, &decoder_[i].cross, i);
      if (hidden && i + 1 < decoder_.size()) hidden->push_back(h);
    }
    cache.advance(seq);
    h = layer_norm(h, params_.get("dec.output_norm.weight"), params_.get("dec.output_norm.bias"), kEps);
    if (hidden) hidden->push_back(h);
    return h;
  }

  // One pre-norm block. With a cache (the decoder): causal self-attention over the cached keys
  // and this call's, then cross-attention on the cache's encoder K and V.
  Tensor block(const Tensor& h, const WhisperLayer& l, int64_t heads, WhisperCache* cache,
               const AttentionWeights* cross, size_t index) const {
    const int64_t batch = h.shape()[0], seq = h.shape()[1], head_dim = d_ / heads;
    const Tensor a = layer_norm(h, l.self.norm_w, l.self.norm_b, kEps);
    const Tensor qkv = linear(a, l.self.qkv_w, l.self.qkv_b);  // [batch, seq, 3 d]
    const Shape bshd = {batch, seq, heads, head_dim};
    const auto part = [&](int64_t which) { return fused_projection_part(qkv, 3, which, heads); };
    AttentionOptions options;
    options.layout = AttentionLayout::BSHD;
    Tensor context;
    if (cache == nullptr) {
      context = attention(part(0), part(1), part(2), options).out;
    } else {
      options.causal = true;
      const int64_t past = cache->length();
      const Tensor& k_cache = cache->k_[index];
      const Tensor& v_cache = cache->v_[index];
      const float* src = qkv.data_as<float>();
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t s = 0; s < seq; ++s) {
          const float* row = src + (b * seq + s) * 3 * d_;
          const int64_t slot = (b * cache->capacity() + past + s) * d_;
          std::memcpy(k_cache.data_as<float>() + slot, row + d_, static_cast<size_t>(d_) * 4);
          std::memcpy(v_cache.data_as<float>() + slot, row + 2 * d_, static_cast<size_t>(d_) * 4);
        }
      }
      context = attention(part(0), k_cache.slice(1, 0, past + seq), v_cache.slice(1, 0, past + seq),
                          options).out;
    }
    Tensor h1 = linear(context.view({batch, seq, d_}), l.self.out_w, l.self.out_b);
    add_inplace(h1, h);
    if (cross != nullptr) {
      const Tensor c = layer_norm(h1, cross->norm_w, cross->norm_b, kEps);
      const Tensor q = linear(c, cross->qkv_w, cross->qkv_b).view(bshd);
      AttentionOptions cross_options;
      cross_options.layout = AttentionLayout::BSHD;
      const Tensor cross_context =
          attention(q, cache->cross_k_[index], cache->cross_v_[index], cross_options).out;
      Tensor h2 = linear(cross_context.view({batch, seq, d_}), cross->out_w, cross->out_b);
      add_inplace(h2, h1);
      h1 = std::move(h2);
    }
    const Tensor m = layer_norm(h1, l.ffn_norm_w, l.ffn_norm_b, kEps);
    Tensor f = linear(gelu(linear(m, l.up_w, l.up_b), GeluApproximation::None), l.down_w, l.down_b);
    add_inplace(f, h1);
    return f;
  }

  // The decoder prompt (whisper_generation.h); `encoded` receives the encoder output when
  // language detection ran the encoder.
  Tensor prompt(const Tensor& features, const WhisperGenerationOptions& options,
                Tensor& encoded) const {
    const int64_t batch = features.shape()[0];
    // detect_language: the logits after the start token, the largest among the language tokens.
    const auto detect = [&](int64_t start, const std::vector<int64_t>& language_ids) {
      encoded = encode(features, nullptr);
      Tensor ids = Tensor::empty(DType::I64, {batch, 1});
      std::fill(ids.data_as<int64_t>(), ids.data_as<int64_t>() + batch, start);
      WhisperCache cache = make_cache(batch, 1);
      fill_cross(cache, encoded);
      const Tensor logits = last_logits(decode(ids, cache, nullptr));
      std::vector<int64_t> chosen;
      std::vector<double> scores(static_cast<size_t>(vocab_));
      for (int64_t b = 0; b < batch; ++b) {
        std::fill(scores.begin(), scores.end(), -std::numeric_limits<double>::infinity());
        for (int64_t id : language_ids) {
          if (id >= 0 && id < vocab_) {
            scores[static_cast<size_t>(id)] = logits.data_as<float>()[b * vocab_ + id];
          }
        }
        chosen.push_back(first_argmax(scores));
      }
      return chosen;
    };
    return whisper_decoder_prompt(generation_config(), options, batch, detect);
  }

  nlohmann::json config_;
  Parameters params_;
  std::string head_;
  int64_t d_ = 0, enc_heads_ = 0, dec_heads_ = 0, mels_ = 0, sources_ = 0, targets_ = 0, vocab_ = 0;
  Tensor conv1_w_, conv2_w_, out_w_;
  std::vector<WhisperLayer> encoder_, decoder_;
};

}  // namespace

std::unique_ptr<Model> build_whisper_model(nlohmann::json config,
                                           std::vector<std::pair<std::string, Tensor>> state,
                                           const std::string& head) {
  require_head(kFamily, head, {"", "conditional_generation"});
  return std::make_unique<Whisper>(std::move(config), f32_parameters(kFamily, std::move(state)),
                                   head);
}

}  // namespace hfport::models
