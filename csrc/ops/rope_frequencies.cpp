// RoPE frequency tables (rope_config_from_json, rope_frequencies, rope_table); see rope.h. The
// rotation is ops/rope.cpp.
//
// The table code mirrors transformers' float32 arithmetic on purpose: python scalars meeting a
// float32 tensor are rounded to float32 first (torch's rule for wrapped numbers), python-only
// arithmetic stays in double, and no product is fused into an FMA (this file is compiled
// without FMA, and the expressions are written one rounding at a time).
#include "ops/rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <string>

#include "core/cast.h"
#include "core/error.h"

namespace hfport {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// config.json -> RopeConfig

// A member that is present and not null.
const json* field(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

double number_at(const json& value, const std::string& where) {
  if (!value.is_number()) {
    throw ConfigError("rope config: " + where + " must be a number, got " + value.dump());
  }
  const double number = value.get<double>();
  // config.json cannot hold NaN or inf, but a dict from Python can (float("nan")); dump() would
  // print it as null.
  if (!std::isfinite(number)) {
    throw ConfigError("rope config: " + where + " must be a finite number, got " +
                      std::to_string(number));
  }
  return number;
}

std::optional<double> optional_number(const json& object, const char* key,
                                      const std::string& where) {
  const json* value = field(object, key);
  if (!value) return std::nullopt;
  return number_at(*value, where + "'" + key + "'");
}

int64_t integer_at(const json& value, const std::string& where) {
  if (!value.is_number_integer()) {
    throw ConfigError("rope config: " + where + " must be an integer, got " + value.dump());
  }
  return value.get<int64_t>();
}

std::vector<double> number_list(const json& object, const char* key, const std::string& where,
                                size_t expected) {
  const json* value = field(object, key);
  if (!value || !value->is_array()) {
    throw ConfigError("rope config: " + where + "'" + key + "' must be a list of " +
                      std::to_string(expected) + " numbers for rope_type 'longrope'");
  }
  std::vector<double> out;
  for (const json& item : *value) out.push_back(number_at(item, where + "'" + key + "' item"));
  if (out.size() != expected) {
    throw ConfigError("rope config: " + where + "'" + key + "' has " + std::to_string(out.size()) +
                      " numbers; rotary_dim / 2 = " + std::to_string(expected) + " expected");
  }
  return out;
}

}  // namespace

int64_t RopeConfig::rotary_dim() const {
  return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
}

RopeConfig rope_config_from_json(const json& config) {
  if (!config.is_object()) throw ConfigError("rope config: expected a JSON object (config.json)");
  json params = json::object();
  std::string params_name = "rope_parameters";
  if (const json* p = field(config, "rope_parameters")) {
    params = *p;
  } else if (const json* s = field(config, "rope_scaling")) {
    params = *s;
    params_name = "rope_scaling";
  }
  if (!params.is_object()) {
    throw ConfigError("rope config: '" + params_name + "' must be an object, got " + params.dump());
  }
  for (const auto& [key, value] : params.items()) {
    if (value.is_object()) {
      throw ConfigError("rope config: '" + params_name + "' holds per-layer-type parameters ('" +
                        key + "', ...); pass the object of one layer type as 'rope_parameters'");
    }
  }
  const std::string in = "'" + params_name + "' ";

  RopeConfig out;
  std::string type = "default";
  if (const json* t = field(params, "rope_type") ? field(params, "rope_type") : field(params, "type")) {
    if (!t->is_string()) throw ConfigError("rope config: rope_type must be a string, got " + t->dump());
    type = t->get<std::string>();
  }
  if (type == "default") out.type = RopeType::Default;
  else if (type == "linear") out.type = RopeType::Linear;
  else if (type == "dynamic") out.type = RopeType::Dynamic;
  else if (type == "yarn") out.type = RopeType::Yarn;
  else if (type == "longrope") out.type = RopeType::LongRope;
  else if (type == "llama3") out.type = RopeType::Llama3;
  else {
    throw ConfigError("rope config: rope_type '" + type + "' is not supported; hfport computes "
                      "default, linear, dynamic, yarn, longrope and llama3");
  }

  if (auto theta = optional_number(params, "rope_theta", in)) {
    out.theta = *theta;
  } else if (auto top = optional_number(config, "rope_theta", "")) {
    out.theta = *top;
  }
  if (auto partial = optional_number(params, "partial_rotary_factor", in)) {
    out.partial_rotary_factor = *partial;
  } else if (auto top = optional_number(config, "partial_rotary_factor", "")) {
    out.partial_rotary_factor = *top;
  }

  if (const json* hd = field(config, "head_dim")) {
    out.head_dim = integer_at(*hd, "'head_dim'");
  } else {
    const json* hidden = field(config, "hidden_size");
    const json* heads = field(config, "num_attention_heads");
    if (!hidden || !heads) {
      throw ConfigError("rope config: needs 'head_dim', or 'hidden_size' and "
                        "'num_attention_heads' to derive it");
    }
    const int64_t h = integer_at(*heads, "'num_attention_heads'");
    if (h <= 0) throw ConfigError("rope config: 'num_attention_heads' must be positive");
    out.head_dim = integer_at(*hidden, "'hidden_size'") / h;
  }
  if (const json* mp = field(config, "max_position_embeddings")) {
    out.max_position_embeddings = integer_at(*mp, "'max_position_embeddings'");
  }
  const int64_t dim = out.rotary_dim();
  if (dim < 2 || dim % 2 != 0) {
    throw ConfigError("rope config: rotary_dim = int(head_dim * partial_rotary_factor) = " +
                      std::to_string(dim) + " must be even and at least 2");
  }

  out.factor = optional_number(params, "factor", in);
  out.attention_factor = optional_number(params, "attention_factor", in);
  out.beta_fast = optional_number(params, "beta_fast", in);
  out.beta_slow = optional_number(params, "beta_slow", in);
  out.mscale = optional_number(params, "mscale", in);
  out.mscale_all_dim = optional_number(params, "mscale_all_dim", in);
  if (const json* t = field(params, "truncate")) out.truncate = t->is_boolean() ? t->get<bool>() : true;

  const bool needs_original = out.type == RopeType::Yarn || out.type == RopeType::LongRope ||
                              out.type == RopeType::Llama3;
  if (needs_original) {
    if (const json* top = field(config, "original_max_position_embeddings")) {
      out.original_max_position_embeddings = integer_at(*top, "'original_max_position_embeddings'");
    } else if (const json* p = field(params, "original_max_position_embeddings")) {
      out.original_max_position_embeddings =
          integer_at(*p, in + "'original_max_position_embeddings'");
    } else if (out.max_position_embeddings > 0) {
      out.original_max_position_embeddings = out.max_position_embeddings;
    } else {
      throw ConfigError("rope config: rope_type '" + type + "' needs "
                        "'original_max_position_embeddings' or 'max_position_embeddings'");
    }
  }
  const bool needs_factor = out.type == RopeType::Linear || out.type == RopeType::Dynamic ||
                            out.type == RopeType::Llama3;
  if (needs_factor && !out.factor) {
    throw ConfigError("rope config: rope_type '" + type + "' needs " + in + "'factor'");
  }
  if ((out.type == RopeType::Dynamic || ((out.type == RopeType::Yarn ||
                                          out.type == RopeType::LongRope) && !out.factor)) &&
      out.max_position_embeddings <= 0) {
    throw ConfigError("rope config: rope_type '" + type + "' needs 'max_position_embeddings'");
  }
  if (out.type == RopeType::Llama3) {
    const auto low = optional_number(params, "low_freq_factor", in);
    const auto high = optional_number(params, "high_freq_factor", in);
    if (!low || !high) {
      throw ConfigError("rope config: rope_type 'llama3' needs " + in + "'low_freq_factor' and "
                        "'high_freq_factor'");
    }
    out.low_freq_factor = *low;
    out.high_freq_factor = *high;
  }
  if (out.type == RopeType::LongRope) {
    out.short_factor = number_list(params, "short_factor", in, static_cast<size_t>(dim / 2));
    out.long_factor = number_list(params, "long_factor", in, static_cast<size_t>(dim / 2));
  }
  return out;
}

namespace {

// torch's float32 pow for a float32 base and exponent.
float pow_f32(float base, float exponent) {
  return static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
}

// base ** (arange(0, dim, 2) / dim) in float32, element i.
float base_power(float base, int64_t i, int64_t dim) {
  return pow_f32(base, static_cast<float>(2 * i) / static_cast<float>(dim));
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

RopeFrequencies rope_frequencies(const RopeConfig& c, std::optional<int64_t> seq_len) {
  const int64_t dim = c.rotary_dim();
  if (dim < 2 || dim % 2 != 0) {
    throw ConfigError("rope config: rotary_dim = " + std::to_string(dim) +
                      " must be even and at least 2");
  }
  const int64_t half = dim / 2;
  RopeFrequencies out;
  out.inv_freq.resize(static_cast<size_t>(half));
  std::vector<float>& inv = out.inv_freq;
  const float base = static_cast<float>(c.theta);
  switch (c.type) {
    case RopeType::Default:
    case RopeType::Linear:
      for (int64_t i = 0; i < half; ++i) inv[i] = 1.0f / base_power(base, i, dim);
      if (c.type == RopeType::Linear) {
        for (float& f : inv) f /= static_cast<float>(*c.factor);
      }
      break;
    case RopeType::Dynamic: {
      if (dim <= 2) throw ConfigError("rope_frequencies: dynamic scaling needs a rotary dim > 2");
      const double factor = *c.factor;
      const auto max_pos = static_cast<double>(c.max_position_embeddings);
      const double len = std::max(static_cast<double>(seq_len.value_or(c.max_position_embeddings)),
                                  max_pos);
      const double scaled = c.theta * std::pow(factor * len / max_pos - (factor - 1.0),
                                               static_cast<double>(dim) / (dim - 2));
      for (int64_t i = 0; i < half; ++i) inv[i] = 1.0f / base_power(static_cast<float>(scaled), i, dim);
      break;
    }
    case RopeType::Yarn: {
      const auto original = static_cast<double>(*c.original_max_position_embeddings);
      const double factor = c.factor.value_or(c.max_position_embeddings / original);
      double attention = 0.0;
      if (c.attention_factor) {
        attention = *c.attention_factor;
      } else if (c.mscale && c.mscale_all_dim && *c.mscale != 0.0 && *c.mscale_all_dim != 0.0) {
        attention = yarn_mscale(factor, *c.mscale) / yarn_mscale(factor, *c.mscale_all_dim);
      } else {
        attention = yarn_mscale(factor, 1.0);
      }
      out.attention_scaling = static_cast<float>(attention);
      // transformers: `beta_fast or 32`, so a 0 means the default too.
      const double beta_fast = c.beta_fast && *c.beta_fast != 0.0 ? *c.beta_fast : 32.0;
      const double beta_slow = c.beta_slow && *c.beta_slow != 0.0 ? *c.beta_slow : 1.0;
      auto correction_dim = [&](double rotations) {
        return (dim * std::log(original / (rotations * 2 * std::numbers::pi))) /
               (2 * std::log(c.theta));
      };
      double low = correction_dim(beta_fast);
      double high = correction_dim(beta_slow);
      if (c.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      const float low_f = static_cast<float>(low);
      const float span = static_cast<float>(high - low);
      const float factor_f = static_cast<float>(factor);
      for (int64_t i = 0; i < half; ++i) {
        const float pos_freq = base_power(base, i, dim);
        const float extrapolation = 1.0f / pos_freq;
        const float interpolation = 1.0f / (factor_f * pos_freq);
        const float ramp = std::clamp((static_cast<float>(i) - low_f) / span, 0.0f, 1.0f);
        const float extrapolation_factor = 1.0f - ramp;
        const float a = interpolation * (1.0f - extrapolation_factor);
        const float b = extrapolation * extrapolation_factor;
        inv[i] = a + b;
      }
      break;
    }
    case RopeType::LongRope: {
      const auto original = *c.original_max_position_embeddings;
      const double factor = c.factor.value_or(static_cast<double>(c.max_position_embeddings) /
                                              static_cast<double>(original));
      double attention = 1.0;
      if (c.attention_factor) {
        attention = *c.attention_factor;
      } else if (factor > 1.0) {
        attention = std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(original)));
      }
      out.attention_scaling = static_cast<float>(attention);
      const bool long_context = seq_len && *seq_len > original;
      const std::vector<double>& ext = long_context ? c.long_factor : c.short_factor;
      if (static_cast<int64_t>(ext.size()) != half) {
        throw ConfigError("rope_frequencies: longrope needs " + std::to_string(half) + " " +
                          (long_context ? "long" : "short") + "_factor values (rotary dim / 2), got " +
                          std::to_string(ext.size()));
      }
      for (int64_t i = 0; i < half; ++i) {
        inv[i] = 1.0f / (static_cast<float>(ext[i]) * base_power(base, i, dim));
      }
      break;
    }
    case RopeType::Llama3: {
      const auto old_context = static_cast<double>(*c.original_max_position_embeddings);
      const float factor = static_cast<float>(*c.factor);
      const float low_wavelen = static_cast<float>(old_context / c.low_freq_factor);
      const float high_wavelen = static_cast<float>(old_context / c.high_freq_factor);
      const float low_f = static_cast<float>(c.low_freq_factor);
      const float span = static_cast<float>(c.high_freq_factor - c.low_freq_factor);
      const float two_pi = static_cast<float>(2 * std::numbers::pi);
      for (int64_t i = 0; i < half; ++i) {
        const float f = 1.0f / base_power(base, i, dim);
        const float wavelen = two_pi / f;
        const float scaled = wavelen > low_wavelen ? f / factor : f;
        const float smooth = (static_cast<float>(old_context) / wavelen - low_f) / span;
        const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        inv[i] = medium ? smoothed : scaled;
      }
      break;
    }
  }
  return out;
}

RopeTable rope_table(const RopeConfig& config, const Tensor& positions,
                     std::optional<int64_t> seq_len) {
  if (!positions.defined() || (positions.dtype() != DType::I64 && positions.dtype() != DType::I32) ||
      positions.ndim() < 1 || positions.ndim() > 2) {
    throw ArgumentError("rope_table: positions must be an I64 or I32 tensor of shape [S] or [B, S], got " +
                (positions.defined() ? std::string(dtype_name(positions.dtype())) + " " +
                                           shape_to_string(positions.shape())
                                     : std::string("an undefined tensor")));
  }
  if (positions.device().type != DeviceType::CPU) {
    throw DeviceError("rope_table: positions are on a CUDA device; pass host positions");
  }
  const Tensor pos = positions.contiguous();
  const int64_t count = pos.numel();
  std::vector<int64_t> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    values[i] = static_cast<int64_t>(load_as_f64(pos.data(), pos.dtype(), static_cast<size_t>(i)));
  }
  if (!seq_len && count > 0) seq_len = *std::max_element(values.begin(), values.end()) + 1;
  const RopeFrequencies freqs = rope_frequencies(config, seq_len);
  const auto half = static_cast<int64_t>(freqs.inv_freq.size());
  Shape shape = pos.shape();
  shape.push_back(2 * half);
  RopeTable table{Tensor::empty(DType::F32, shape), Tensor::empty(DType::F32, shape)};
  float* cos_out = table.cos.data_as<float>();
  float* sin_out = table.sin.data_as<float>();
  for (int64_t r = 0; r < count; ++r) {
    const auto p = static_cast<float>(values[r]);
    for (int64_t i = 0; i < half; ++i) {
      // torch: (inv_freq @ positions) is one float32 product; cos/sin of it; times the scaling.
      const float angle = freqs.inv_freq[i] * p;
      const float c = static_cast<float>(std::cos(static_cast<double>(angle))) * freqs.attention_scaling;
      const float s = static_cast<float>(std::sin(static_cast<double>(angle))) * freqs.attention_scaling;
      cos_out[r * 2 * half + i] = cos_out[r * 2 * half + half + i] = c;
      sin_out[r * 2 * half + i] = sin_out[r * 2 * half + half + i] = s;
    }
  }
  return table;
}

RopeTable rope_2d_table(int64_t grid_h, int64_t grid_w, int64_t head_dim, double theta) {
  if (grid_h < 1 || grid_w < 1 || head_dim < 4 || head_dim % 4 != 0 || !(theta > 0.0)) {
    throw ArgumentError("rope_2d_table: needs grid_h, grid_w >= 1, head_dim a positive multiple "
                        "of 4 and theta > 0, got grid " + std::to_string(grid_h) + "x" +
                        std::to_string(grid_w) + ", head_dim " + std::to_string(head_dim) +
                        ", theta " + std::to_string(theta));
  }
  const int64_t quarter = head_dim / 4;
  std::vector<float> inv_freq(static_cast<size_t>(quarter));
  for (int64_t j = 0; j < quarter; ++j) {
    // torch.arange(0, 1, 4 / head_dim) in float32, theta ** it, then its reciprocal.
    const auto exponent = static_cast<float>(static_cast<double>(j) * (4.0 / static_cast<double>(head_dim)));
    const auto power = static_cast<float>(std::pow(static_cast<double>(static_cast<float>(theta)),
                                                   static_cast<double>(exponent)));
    inv_freq[j] = 1.0f / power;
  }
  // The patch centres as transformers rounds them: (i + 0.5) / n, then 2 c - 1, in float32.
  const auto centre = [](int64_t i, int64_t n) {
    const float c = (static_cast<float>(i) + 0.5f) / static_cast<float>(n);
    return 2.0f * c - 1.0f;
  };
  const auto two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  const int64_t count = grid_h * grid_w;
  RopeTable table{Tensor::empty(DType::F32, {count, head_dim}),
                  Tensor::empty(DType::F32, {count, head_dim})};
  float* cos_out = table.cos.data_as<float>();
  float* sin_out = table.sin.data_as<float>();
  for (int64_t p = 0; p < count; ++p) {
    const float coords[2] = {centre(p / grid_w, grid_h), centre(p % grid_w, grid_w)};
    float* c = cos_out + p * head_dim;
    float* s = sin_out + p * head_dim;
    for (int64_t axis = 0; axis < 2; ++axis) {
      const float scaled = two_pi * coords[axis];  // (2 pi * coords) first, as Python groups it
      for (int64_t j = 0; j < quarter; ++j) {
        const float angle = scaled * inv_freq[j];
        const int64_t at = axis * quarter + j;
        c[at] = c[at + 2 * quarter] = static_cast<float>(std::cos(static_cast<double>(angle)));
        s[at] = s[at + 2 * quarter] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
    }
  }
  return table;
}

}  // namespace hfport
