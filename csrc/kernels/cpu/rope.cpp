// RoPE frequency tables and the rotation kernel; see rope.h.
//
// The table code mirrors transformers' float32 arithmetic on purpose: python scalars meeting a
// float32 tensor are rounded to float32 first (torch's rule for wrapped numbers), python-only
// arithmetic stays in double, and no product is fused into an FMA (this file is compiled
// without FMA, and the expressions are written one rounding at a time).
#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <string>

#include "core/cast.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/kernel_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/rope.h"
#endif

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

namespace {

// ---------------------------------------------------------------------------------------------
// Application.

constexpr int64_t kMinElementsPerThread = int64_t{1} << 16;

bool is_rope_dtype(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

// (b, h, s) dims and strides of a 4-D q/k in `layout`.
void read_heads(const Tensor& t, const char* name, AttentionLayout layout, int64_t dims[4],
                int64_t strides[3]) {
  if (t.ndim() != 4) {
    throw ArgumentError(std::string("rope: ") + name + " must be 4-D " +
                (layout == AttentionLayout::BHSD ? "[batch, heads, seq, head_dim]"
                                                 : "[batch, seq, heads, head_dim]") +
                ", got shape " + shape_to_string(t.shape()));
  }
  const int head = layout == AttentionLayout::BHSD ? 1 : 2;
  const int seq = layout == AttentionLayout::BHSD ? 2 : 1;
  dims[0] = t.shape()[0];
  dims[1] = t.shape()[head];
  dims[2] = t.shape()[seq];
  dims[3] = t.shape()[3];
  strides[0] = t.strides()[0];
  strides[1] = t.strides()[head];
  strides[2] = t.strides()[seq];
}

float load_f32(const void* base, DType dtype, int64_t index) {
  uint16_t bits;
  if (dtype == DType::F32) {
    float value;
    std::memcpy(&value, static_cast<const float*>(base) + index, sizeof(value));
    return value;
  }
  std::memcpy(&bits, static_cast<const uint16_t*>(base) + index, sizeof(bits));
  return dtype == DType::F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

// The rotation of one head row in f32 (x and out may be the same row).
void rotate_row(const float* x, float* out, const float* c, const float* s, int64_t rotary,
                bool interleaved) {
  const int64_t half = rotary / 2;
  if (interleaved) {
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[2 * i];
      const float b = x[2 * i + 1];
      out[2 * i] = a * c[i] - b * s[i];
      out[2 * i + 1] = b * c[i] + a * s[i];
    }
  } else {
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[i];
      const float b = x[i + half];
      out[i] = a * c[i] - b * s[i];
      out[i + half] = b * c[i] + a * s[i];
    }
  }
}

void rope_rows(const RopeParams& p, int64_t begin, int64_t end) {
  const int64_t half = p.rotary_dim / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
  std::vector<float> row(static_cast<size_t>(p.head_dim));
  const size_t item = dtype_size(p.dtype);
  for (int64_t bs = begin; bs < end; ++bs) {
    const int64_t b = bs / p.seq;
    const int64_t pos = bs % p.seq;
    const int64_t table_at = b * p.table_stride[0] + pos * p.table_stride[1];
    for (int64_t i = 0; i < half; ++i) {
      c[i] = load_f32(p.cos, p.table_dtype, table_at + i);
      s[i] = load_f32(p.sin, p.table_dtype, table_at + i);
    }
    for (int64_t h = 0; h < p.heads; ++h) {
      const int64_t x_at = b * p.x_stride[0] + h * p.x_stride[1] + pos * p.x_stride[2];
      const int64_t out_at = b * p.out_stride[0] + h * p.out_stride[1] + pos * p.out_stride[2];
      const std::byte* src = static_cast<const std::byte*>(p.x) + x_at * static_cast<int64_t>(item);
      std::byte* dst = static_cast<std::byte*>(p.out) + out_at * static_cast<int64_t>(item);
      if (p.dtype == DType::F32) {
        const auto* xf = reinterpret_cast<const float*>(src);
        auto* of = reinterpret_cast<float*>(dst);
        rotate_row(xf, of, c.data(), s.data(), p.rotary_dim, p.interleaved);
        if (of != xf && p.rotary_dim < p.head_dim) {
          std::memcpy(of + p.rotary_dim, xf + p.rotary_dim,
                      static_cast<size_t>(p.head_dim - p.rotary_dim) * sizeof(float));
        }
        continue;
      }
      cast_contiguous(src, p.dtype, row.data(), DType::F32, p.rotary_dim);
      rotate_row(row.data(), row.data(), c.data(), s.data(), p.rotary_dim, p.interleaved);
      auto* o16 = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < p.rotary_dim; ++i) {
        o16[i] = p.dtype == DType::F16 ? f32_to_f16(row[i]) : f32_to_bf16(row[i]);
      }
      if (dst != src && p.rotary_dim < p.head_dim) {
        std::memcpy(o16 + p.rotary_dim, reinterpret_cast<const uint16_t*>(src) + p.rotary_dim,
                    static_cast<size_t>(p.head_dim - p.rotary_dim) * item);
      }
    }
  }
}

Tensor host_contiguous(const char*, const Tensor& t) { return t.contiguous(); }

Device rope_device(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin) {
  return op_device("rope", {{"q", &q}, {"k", &k}, {"cos", &cos}, {"sin", &sin}});
}

}  // namespace

RopePlan plan_rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                   const RopeOptions& options, const RopeContiguous& contiguous) {
  RopePlan args;
  args.has_k = k.defined();
  const Tensor* inputs[2] = {&q, &k};
  const char* names[2] = {"q", "k"};
  for (int t = 0; t < (args.has_k ? 2 : 1); ++t) {
    const Tensor& x = *inputs[t];
    if (!x.defined()) throw ArgumentError(std::string("rope: ") + names[t] + " is undefined");
    if (!is_rope_dtype(x.dtype())) {
      throw ArgumentError(std::string("rope: ") + names[t] + " must be F32, F16 or BF16, got " +
                  std::string(dtype_name(x.dtype())));
    }
  }
  if (args.has_k && k.dtype() != q.dtype()) {
    throw ArgumentError("rope: q and k must share one dtype, got q " + std::string(dtype_name(q.dtype())) +
                ", k " + std::string(dtype_name(k.dtype())));
  }
  for (const Tensor* table : {&cos, &sin}) {
    const char* name = table == &cos ? "cos" : "sin";
    if (!table->defined()) throw ArgumentError(std::string("rope: ") + name + " is undefined");
    if (!is_rope_dtype(table->dtype())) {
      throw ArgumentError(std::string("rope: ") + name + " must be F32, F16 or BF16, got " +
                  std::string(dtype_name(table->dtype())));
    }
    if (table->ndim() != 2 && table->ndim() != 3) {
      throw ArgumentError(std::string("rope: ") + name + " must be [seq, W] or [batch, seq, W], got shape " +
                  shape_to_string(table->shape()));
    }
  }
  if (cos.shape() != sin.shape() || cos.dtype() != sin.dtype()) {
    throw ArgumentError("rope: cos and sin must have one shape and dtype, got cos " +
                std::string(dtype_name(cos.dtype())) + " " + shape_to_string(cos.shape()) +
                ", sin " + std::string(dtype_name(sin.dtype())) + " " +
                shape_to_string(sin.shape()));
  }

  int64_t qdims[4], kdims[4];
  int64_t qstrides[3], kstrides[3];
  read_heads(q, "q", options.layout, qdims, qstrides);
  if (args.has_k) {
    read_heads(k, "k", options.layout, kdims, kstrides);
    if (kdims[0] != qdims[0] || kdims[2] != qdims[2] || kdims[3] != qdims[3]) {
      throw ArgumentError("rope: k has batch " + std::to_string(kdims[0]) + ", seq " +
                  std::to_string(kdims[2]) + ", head_dim " + std::to_string(kdims[3]) +
                  "; q has " + std::to_string(qdims[0]) + ", " + std::to_string(qdims[2]) + ", " +
                  std::to_string(qdims[3]) + " (only the head counts may differ)");
    }
  }
  const int64_t batch = qdims[0], seq = qdims[2], head_dim = qdims[3];
  const int64_t width = cos.shape().back();
  const int64_t rotary = options.rotary_dim.value_or(width);
  if (rotary < 2 || rotary % 2 != 0 || rotary > head_dim) {
    throw ArgumentError("rope: rotary_dim must be even and in [2, head_dim = " + std::to_string(head_dim) +
                "], got " + std::to_string(rotary));
  }
  if (width != rotary && 2 * width != rotary) {
    throw ArgumentError("rope: cos/sin have " + std::to_string(width) + " features; rotary_dim " +
                std::to_string(rotary) + " needs " + std::to_string(rotary) +
                " (transformers' layout) or " + std::to_string(rotary / 2) +
                " (one per frequency)");
  }
  const int64_t table_seq = cos.shape()[cos.ndim() - 2];
  const int64_t table_batch = cos.ndim() == 3 ? cos.shape()[0] : 1;
  if (table_seq != seq || (table_batch != 1 && table_batch != batch)) {
    throw ArgumentError("rope: cos/sin must be [seq, W] or [batch or 1, seq, W] with seq = " +
                std::to_string(seq) + ", batch = " + std::to_string(batch) + ", got shape " +
                shape_to_string(cos.shape()));
  }

  // One set of strides serves both tables: copy them when they differ or the last is not unit.
  const bool shared_view = cos.strides() == sin.strides() && (width <= 1 || cos.strides().back() == 1);
  const Tensor cos_use = shared_view ? cos : contiguous("cos", cos);
  const Tensor sin_use = shared_view ? sin : contiguous("sin", sin);
  args.keep_alive = {cos_use, sin_use};

  auto fill = [&](RopeParams& p, const Tensor& x) {
    int64_t dims[4], strides[3];
    read_heads(x, "", options.layout, dims, strides);
    p.batch = batch;
    p.heads = dims[1];
    p.seq = seq;
    p.head_dim = head_dim;
    p.rotary_dim = rotary;
    p.interleaved = options.interleaved;
    p.dtype = x.dtype();
    p.x = x.data();
    std::copy(strides, strides + 3, p.x_stride);
    p.table_dtype = cos_use.dtype();
    p.cos = cos_use.data();
    p.sin = sin_use.data();
    p.table_stride[0] = cos_use.ndim() == 3 && table_batch != 1 ? cos_use.strides()[0] : 0;
    p.table_stride[1] = cos_use.strides()[cos_use.ndim() - 2];
  };
  for (int t = 0; t < (args.has_k ? 2 : 1); ++t) {
    const Tensor& given = *inputs[t];
    const bool unit_last = given.shape()[3] <= 1 || given.strides()[3] == 1;
    if (options.inplace && !unit_last) {
      throw ArgumentError(std::string("rope: inplace needs ") + names[t] + " with a unit-stride last "
                  "dimension, got strides " + shape_to_string(given.strides()));
    }
    const Tensor x = unit_last ? given : contiguous(names[t], given);
    args.keep_alive.push_back(x);
    fill(t == 0 ? args.q : args.k, x);
  }
  return args;
}

void set_rope_output(RopeParams& p, const Tensor& out, AttentionLayout layout) {
  int64_t dims[4], strides[3];
  read_heads(out, "out", layout, dims, strides);
  p.out = out.data();
  std::copy(strides, strides + 3, p.out_stride);
}

void rope_cpu(const RopeParams& p) {
  const int64_t rows = p.batch * p.seq;
  const int64_t per_row = std::max<int64_t>(1, p.heads * p.head_dim);
  parallel_for(rows, std::max<int64_t>(1, kMinElementsPerThread / per_row),
               [&](int64_t begin, int64_t end) { rope_rows(p, begin, end); });
}

RopeResult rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                const RopeOptions& options) {
  const Device device = rope_device(q, k, cos, sin);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::rope(q, k, cos, sin, options);
#endif
  require_host_device("rope", device);
  RopePlan args = plan_rope(q, k, cos, sin, options, host_contiguous);
  RopeResult result;
  const Tensor* inputs[2] = {&q, &k};
  RopeParams* params[2] = {&args.q, &args.k};
  Tensor* outputs[2] = {&result.q, &result.k};
  for (int t = 0; t < (args.has_k ? 2 : 1); ++t) {
    *outputs[t] = options.inplace ? *inputs[t] : Tensor::empty(inputs[t]->dtype(), inputs[t]->shape());
    set_rope_output(*params[t], *outputs[t], options.layout);
    rope_cpu(*params[t]);
  }
  return result;
}

RopeResult rope_reference(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                          const RopeOptions& options) {
  require_host_device("rope_reference", rope_device(q, k, cos, sin));
  const RopePlan args = plan_rope(q, k, cos, sin, options, host_contiguous);
  RopeResult result;
  const RopeParams* params[2] = {&args.q, &args.k};
  Tensor* outputs[2] = {&result.q, &result.k};
  const Tensor* inputs[2] = {&q, &k};
  for (int t = 0; t < (args.has_k ? 2 : 1); ++t) {
    const RopeParams& p = *params[t];
    *outputs[t] = Tensor::empty(DType::F64, inputs[t]->shape());
    const Tensor& out = *outputs[t];
    int64_t dims[4], ostride[3];
    read_heads(out, "out", options.layout, dims, ostride);
    double* o = out.data_as<double>();
    const int64_t half = p.rotary_dim / 2;
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t h = 0; h < p.heads; ++h) {
        for (int64_t s = 0; s < p.seq; ++s) {
          const int64_t x_at = b * p.x_stride[0] + h * p.x_stride[1] + s * p.x_stride[2];
          const int64_t o_at = b * ostride[0] + h * ostride[1] + s * ostride[2];
          const int64_t t_at = b * p.table_stride[0] + s * p.table_stride[1];
          auto x = [&](int64_t d) { return load_as_f64(p.x, p.dtype, static_cast<size_t>(x_at + d)); };
          for (int64_t d = 0; d < p.head_dim; ++d) o[o_at + d] = x(d);
          for (int64_t i = 0; i < half; ++i) {
            const double c = load_as_f64(p.cos, p.table_dtype, static_cast<size_t>(t_at + i));
            const double sn = load_as_f64(p.sin, p.table_dtype, static_cast<size_t>(t_at + i));
            const int64_t ia = p.interleaved ? 2 * i : i;
            const int64_t ib = p.interleaved ? 2 * i + 1 : i + half;
            o[o_at + ia] = x(ia) * c - x(ib) * sn;
            o[o_at + ib] = x(ib) * c + x(ia) * sn;
          }
        }
      }
    }
  }
  return result;
}

}  // namespace hfport
