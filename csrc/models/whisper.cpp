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

std::vector<int64_t> token_list(const nlohmann::json& value, const char* field,
                                const std::string& source) {
  std::vector<int64_t> ids;
  if (value.is_null()) return ids;
  if (!value.is_array()) {
    throw ConfigError(source + ": " + field + " must be a list of token ids, got " + value.dump());
  }
  for (const nlohmann::json& id : value) {
    if (!id.is_number_integer()) {
      throw ConfigError(source + ": " + field + " must hold token ids, got " + id.dump());
    }
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

std::optional<int64_t> token_field(const nlohmann::json& fields, const char* field,
                                   const std::string& source) {
  const auto it = fields.find(field);
  if (it == fields.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) {
    throw ConfigError(source + ": " + field + " must be a token id, got " + it->dump());
  }
  return it->get<int64_t>();
}

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
    return prompt(features, options, nullptr);
  }

  Tensor generate_features(const Tensor& input_features,
                           const WhisperGenerationOptions& options) override {
    require_generation_head();
    const Tensor features = checked_features(input_features);
    const nlohmann::json& g = generation_fields();
    const std::string& source = generation_defaults().source;
    Tensor encoded;
    const Tensor init = prompt(features, options, &encoded);
    if (!encoded.defined()) encoded = encode(features, nullptr);
    const int64_t batch = init.shape()[0], prompt_len = init.shape()[1];

    // Length: _set_max_new_tokens_and_length.
    std::optional<int64_t> max_new = options.max_new_tokens;
    if (!max_new) max_new = token_field(g, "max_new_tokens", source);
    int64_t total = 0;
    if (max_new) {
      if (*max_new < 0) {
        throw ArgumentError("generate: max_new_tokens must be >= 0, got " + std::to_string(*max_new));
      }
      if (*max_new + prompt_len > targets_) {
        throw ArgumentError("generate: the decoder prompt has " + std::to_string(prompt_len) +
                            " tokens and max_new_tokens is " + std::to_string(*max_new) +
                            "; together they exceed max_target_positions " +
                            std::to_string(targets_));
      }
      total = prompt_len + *max_new;
    } else {
      const int64_t max_length = token_field(g, "max_length", source).value_or(20);
      total = std::min(max_length + std::min(targets_ / 2 - 1, prompt_len), targets_);
    }
    const std::optional<int64_t> eos = token_field(g, "eos_token_id", source);
    const std::optional<int64_t> pad_field = token_field(g, "pad_token_id", source);
    const std::optional<int64_t> pad = pad_field ? pad_field : eos;
    const std::vector<int64_t> suppress = token_list(g.value("suppress_tokens", nlohmann::json()),
                                                     "suppress_tokens", source);
    const std::vector<int64_t> begin_suppress = token_list(
        g.value("begin_suppress_tokens", nlohmann::json()), "begin_suppress_tokens", source);

    WhisperCache cache = make_cache(batch, std::max<int64_t>(total, prompt_len));
    fill_cross(cache, encoded);
    std::vector<std::vector<int64_t>> rows(static_cast<size_t>(batch));
    std::vector<bool> unfinished(static_cast<size_t>(batch), true);
    Tensor next = init;
    for (int64_t length = prompt_len; length < total; ++length) {
      const Tensor h = decode(next, cache, nullptr);
      const Tensor last = h.select(1, h.shape()[1] - 1).contiguous();  // [batch, d]
      const Tensor logits = linear(last, out_w_);                      // [batch, vocab]
      next = Tensor::empty(DType::I64, {batch, 1});
      for (int64_t b = 0; b < batch; ++b) {
        int64_t token = pad.value_or(0);
        if (unfinished[static_cast<size_t>(b)]) {
          std::vector<double> scores(static_cast<size_t>(vocab_));
          const float* src = logits.data_as<float>() + b * vocab_;
          for (int64_t v = 0; v < vocab_; ++v) scores[static_cast<size_t>(v)] = src[v];
          if (length == prompt_len) suppress_tokens(scores, begin_suppress);
          suppress_tokens(scores, suppress);
          token = first_argmax(scores);
          if (eos && token == *eos) unfinished[static_cast<size_t>(b)] = false;
        }
        next.data_as<int64_t>()[b] = token;
        rows[static_cast<size_t>(b)].push_back(token);
      }
      if (std::none_of(unfinished.begin(), unfinished.end(), [](bool u) { return u; })) break;
    }
    return finished_rows(rows, eos, pad);
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

  // The generation config as transformers' GenerationConfig holds it. Fields GenerationConfig
  // does not declare (Whisper's lang_to_id, task_to_id, no_timestamps_token_id, is_multilingual,
  // language, task, return_timestamps, forced_decoder_ids) survive only in a generation config
  // written as such: one marked "_from_model_config" (what save_pretrained writes for a model
  // built from a bare config), or config.json standing in for a missing file, loses them in
  // GenerationConfig.__init__, and transformers' generate never sees them.
  const nlohmann::json& generation_fields() {
    fields_ = generation_defaults().fields;
    const bool from_model_config =
        !fields_.is_object() || fields_.value("_from_model_config", false) == true;
    if (!fields_.is_object()) fields_ = config_;
    if (from_model_config) {
      for (const char* key : {"lang_to_id", "task_to_id", "no_timestamps_token_id",
                              "is_multilingual", "language", "task", "return_timestamps",
                              "forced_decoder_ids"}) {
        fields_.erase(key);
      }
    }
    return fields_;
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
    const Shape strides = {seq * 3 * d_, 3 * d_, head_dim, 1};
    const auto part = [&](int64_t which) {
      return Tensor(qkv.storage(), qkv.byte_offset() + static_cast<size_t>(which * d_) * 4,
                    DType::F32, bshd, strides);
    };
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

  // The language token of `language` ("en" or "<|en|>") in lang_to_id.
  int64_t language_id(const std::string& language, const nlohmann::json& lang_to_id,
                      const std::string& source) const {
    if (!lang_to_id.is_object()) {
      throw ArgumentError("generate: language '" + language + "' was asked for, but " + source +
                          " has no lang_to_id (an English-only or outdated generation config)");
    }
    std::string key = language;
    for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!lang_to_id.contains(key)) key = "<|" + key + "|>";
    const auto it = lang_to_id.find(key);
    if (it == lang_to_id.end() || !it->is_number_integer()) {
      throw ArgumentError("generate: language '" + language + "' is not in " + source +
                          "'s lang_to_id; pass a language code such as 'en' or a token such as "
                          "'<|en|>' (full names are not mapped)");
    }
    return it->get<int64_t>();
  }

  // _retrieve_init_tokens: [batch, n] I64. `encoded` receives the encoder output when language
  // detection ran the encoder.
  Tensor prompt(const Tensor& features, const WhisperGenerationOptions& options, Tensor* encoded) {
    const nlohmann::json& g = generation_fields();
    const std::string& source = generation_defaults().source;
    const int64_t batch = features.shape()[0];
    if (g.value("return_timestamps", false)) {
      throw ConfigError(source + " sets return_timestamps, which the native whisper generate "
                        "does not cover (no timestamp tokens); use transformers");
    }
    const std::optional<int64_t> start = token_field(g, "decoder_start_token_id", source);
    if (!start) throw ConfigError(source + ": decoder_start_token_id is not set");
    const auto text = [&](const char* field) -> std::optional<std::string> {
      const auto it = g.find(field);
      if (it == g.end() || it->is_null()) return std::nullopt;
      if (!it->is_string()) throw ConfigError(source + ": " + field + " must be a string");
      return it->get<std::string>();
    };
    const std::optional<std::string> language = options.language ? options.language : text("language");
    const std::optional<std::string> task = options.task ? options.task : text("task");
    if ((options.language || options.task) && g.contains("is_multilingual") &&
        g["is_multilingual"].is_boolean() && !g["is_multilingual"].get<bool>()) {
      throw ArgumentError("generate: task and language are for multilingual models; " + source +
                          " says is_multilingual false");
    }
    std::vector<std::optional<int64_t>> init = {*start};
    if (!language && !task) {
      nlohmann::json forced = g.value("forced_decoder_ids", nlohmann::json());
      if (forced.is_null()) forced = config_.value("forced_decoder_ids", nlohmann::json());
      if (forced.is_array() && !forced.empty() && forced[0].is_array() && forced[0].size() == 2 &&
          forced[0][0] == 1) {
        int64_t position = 1;
        for (const nlohmann::json& pair : forced) {
          if (!pair.is_array() || pair.size() != 2 || pair[0] != position) {
            throw ConfigError(source + ": forced_decoder_ids must force positions 1, 2, ... in "
                              "order, got " + forced.dump());
          }
          init.push_back(pair[1].is_number_integer() ? std::optional<int64_t>(pair[1].get<int64_t>())
                                                     : std::nullopt);
          ++position;
        }
      }
    }
    const bool language_undefined = init.size() <= 1 || !init[1];
    const nlohmann::json lang_to_id = g.value("lang_to_id", nlohmann::json());
    std::vector<std::vector<std::optional<int64_t>>> rows(static_cast<size_t>(batch), init);
    std::vector<int64_t> languages;
    if (language) {
      languages.assign(static_cast<size_t>(batch), language_id(*language, lang_to_id, source));
    } else if (lang_to_id.is_object() && language_undefined) {
      languages = detect_language(features, lang_to_id, encoded);
    }
    for (size_t b = 0; b < languages.size(); ++b) {
      if (rows[b].size() > 1) {
        rows[b][1] = languages[b];
      } else {
        rows[b].push_back(languages[b]);
      }
    }
    const nlohmann::json task_to_id = g.value("task_to_id", nlohmann::json());
    const std::optional<int64_t> no_timestamps = token_field(g, "no_timestamps_token_id", source);
    for (auto& row : rows) {
      const auto has = [&](int64_t id) { return std::find(row.begin(), row.end(), id) != row.end(); };
      if (task) {
        if (*task != "transcribe" && *task != "translate") {
          throw ArgumentError("generate: task must be 'transcribe' or 'translate', got '" + *task + "'");
        }
        if (!task_to_id.is_object() || !task_to_id.contains(*task)) {
          throw ArgumentError("generate: task '" + *task + "' was asked for, but " + source +
                              " has no task_to_id entry for it");
        }
        row.push_back(task_to_id[*task].get<int64_t>());
      } else if (language && task_to_id.is_object()) {
        bool any = false;
        for (const auto& [name, id] : task_to_id.items()) any = any || (id.is_number_integer() && has(id.get<int64_t>()));
        if (!any && task_to_id.contains("transcribe")) row.push_back(task_to_id["transcribe"].get<int64_t>());
      }
      if (no_timestamps && row.back() != no_timestamps) row.push_back(*no_timestamps);
    }
    std::vector<std::vector<int64_t>> tokens;
    for (const auto& row : rows) {
      std::vector<int64_t> kept;
      for (const auto& t : row) {
        if (t) kept.push_back(*t);
      }
      tokens.push_back(std::move(kept));
    }
    const int64_t n = static_cast<int64_t>(tokens.front().size());
    Tensor out = Tensor::empty(DType::I64, {batch, n});
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < n; ++i) out.data_as<int64_t>()[b * n + i] = tokens[static_cast<size_t>(b)][static_cast<size_t>(i)];
    }
    return out;
  }

  // detect_language: the decoder's logits after the start token, the largest among lang_to_id.
  std::vector<int64_t> detect_language(const Tensor& features, const nlohmann::json& lang_to_id,
                                       Tensor* encoded) {
    const int64_t batch = features.shape()[0];
    const Tensor enc = encode(features, nullptr);
    if (encoded) *encoded = enc;
    const std::optional<int64_t> start =
        token_field(generation_fields(), "decoder_start_token_id", generation_defaults().source);
    Tensor ids = Tensor::empty(DType::I64, {batch, 1});
    for (int64_t b = 0; b < batch; ++b) ids.data_as<int64_t>()[b] = *start;
    WhisperCache cache = make_cache(batch, 1);
    fill_cross(cache, enc);
    const Tensor logits = linear(decode(ids, cache, nullptr).select(1, 0).contiguous(), out_w_);
    std::vector<int64_t> ids_out;
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<double> scores(static_cast<size_t>(vocab_), -std::numeric_limits<double>::infinity());
      for (const auto& [name, id] : lang_to_id.items()) {
        if (id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < vocab_) {
          scores[static_cast<size_t>(id.get<int64_t>())] = logits.data_as<float>()[b * vocab_ + id.get<int64_t>()];
        }
      }
      ids_out.push_back(first_argmax(scores));
    }
    return ids_out;
  }

  // generate_with_fallback's trimming and _pad_to_max_length.
  static Tensor finished_rows(std::vector<std::vector<int64_t>>& rows, std::optional<int64_t> eos,
                              std::optional<int64_t> pad) {
    size_t longest = 0;
    for (auto& row : rows) {
      if (pad && !row.empty() && row.back() == *pad) {
        int64_t pads = std::count(row.begin(), row.end(), *pad);
        if (eos && *eos == *pad) pads -= 1;
        row.resize(row.size() - static_cast<size_t>(std::min<int64_t>(pads, static_cast<int64_t>(row.size()))));
      }
      if (eos && !row.empty() && row.back() == *eos) row.pop_back();
      longest = std::max(longest, row.size());
    }
    const int64_t batch = static_cast<int64_t>(rows.size()), width = static_cast<int64_t>(longest);
    Tensor out = Tensor::empty(DType::I64, {batch, width});
    for (int64_t b = 0; b < batch; ++b) {
      const auto& row = rows[static_cast<size_t>(b)];
      for (int64_t i = 0; i < width; ++i) {
        out.data_as<int64_t>()[b * width + i] =
            i < static_cast<int64_t>(row.size()) ? row[static_cast<size_t>(i)] : pad.value_or(0);
      }
    }
    return out;
  }

  nlohmann::json config_;
  Parameters params_;
  std::string head_;
  nlohmann::json fields_;
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
