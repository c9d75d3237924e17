// The attention entry point: argument checks (check_attention, shared by every device's path),
// device dispatch and outputs, and the float64 reference; the CPU kernel is
// kernels/cpu/attention.cpp.
#include "ops/attention.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/cast.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/attention.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport {

namespace {

std::string dims_name(AttentionLayout layout) {
  return layout == AttentionLayout::BHSD ? "[batch, heads, seq, head_dim]"
                                         : "[batch, seq, heads, head_dim]";
}

std::string layout_name(AttentionLayout layout) {
  return layout == AttentionLayout::BHSD ? "bhsd" : "bshd";
}

// A contiguous copy of `t` on its own device (the kernels need a unit-stride last dimension).
Tensor contiguous_on_device(const Tensor& t, const char* name) {
#ifdef HFPORT_WITH_CUDA
  if (t.device().type == DeviceType::CUDA) {
    const cuda::CurrentDevice current(t.device());
    return cuda::contiguous_as("attention", name, t, t.dtype());
  }
#else
  (void)name;
#endif
  return t.contiguous();
}

// A 4-D q/k/v tensor read as (batch, heads, seq, dim) with its strides in that order; a tensor
// whose last dimension is not unit stride is copied to a contiguous one first.
struct HeadView {
  Tensor tensor;
  int64_t batch, heads, seq, dim;
  int64_t stride[3];
};

HeadView head_view(const Tensor& t, const char* name, AttentionLayout layout) {
  if (!t.defined()) throw ArgumentError(std::string("attention: ") + name + " is undefined");
  if (t.ndim() != 4) {
    throw ArgumentError(std::string("attention: ") + name + " must be 4-D " + dims_name(layout) +
                " for layout '" + layout_name(layout) + "', got shape " +
                shape_to_string(t.shape()));
  }
  HeadView view{t.shape()[3] > 1 && t.strides()[3] != 1 ? contiguous_on_device(t, name) : t, 0, 0,
                0, 0, {}};
  const Shape& shape = view.tensor.shape();
  const Shape& strides = view.tensor.strides();
  const int seq_dim = layout == AttentionLayout::BHSD ? 2 : 1;
  const int head_dim = layout == AttentionLayout::BHSD ? 1 : 2;
  view.batch = shape[0];
  view.heads = shape[head_dim];
  view.seq = shape[seq_dim];
  view.dim = shape[3];
  view.stride[0] = strides[0];
  view.stride[1] = strides[head_dim];
  view.stride[2] = strides[seq_dim];
  return view;
}

bool is_attention_dtype(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

std::string name_of(DType dtype) { return std::string(dtype_name(dtype)); }

}  // namespace

AttentionLayout attention_layout_from_name(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "bhsd") return AttentionLayout::BHSD;
  if (lower == "bshd") return AttentionLayout::BSHD;
  throw ArgumentError("attention: layout must be 'bhsd' ([batch, heads, seq, head_dim]) or 'bshd' "
              "([batch, seq, heads, head_dim]), got '" + name + "'");
}

CheckedAttention check_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& options) {
  const AttentionLayout layout = options.layout;
  const Device device = op_device("attention", {{"q", &q},
                                                {"k", &k},
                                                {"v", &v},
                                                {"attn_mask", &options.attn_mask},
                                                {"key_padding_mask", &options.key_padding_mask}});
  const HeadView qv = head_view(q, "q", layout);
  const HeadView kv = head_view(k, "k", layout);
  const HeadView vv = head_view(v, "v", layout);
  if (!is_attention_dtype(q.dtype())) {
    throw ArgumentError("attention: q must be F32, F16 or BF16, got " + name_of(q.dtype()));
  }
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype()) {
    throw ArgumentError("attention: q, k and v must share one dtype, got q " + name_of(q.dtype()) +
                ", k " + name_of(k.dtype()) + ", v " + name_of(v.dtype()));
  }
  const std::string dims = " (layout '" + layout_name(layout) + "': " + dims_name(layout) + ")";
  if (kv.batch != qv.batch || vv.batch != qv.batch) {
    throw ArgumentError("attention: batch sizes differ: q has " + std::to_string(qv.batch) + ", k " +
                std::to_string(kv.batch) + ", v " + std::to_string(vv.batch) + dims);
  }
  if (kv.dim != qv.dim) {
    throw ArgumentError("attention: k has head_dim " + std::to_string(kv.dim) + ", q has " +
                std::to_string(qv.dim) + "; they must match" + dims);
  }
  if (qv.dim == 0) throw ArgumentError("attention: head_dim is 0");
  if (vv.heads != kv.heads || vv.seq != kv.seq) {
    throw ArgumentError("attention: v has " + std::to_string(vv.heads) + " heads and " +
                std::to_string(vv.seq) + " positions, k has " + std::to_string(kv.heads) +
                " and " + std::to_string(kv.seq) + "; they must match" + dims);
  }
  if (kv.heads == 0 || qv.heads % kv.heads != 0) {
    throw ArgumentError("attention: k has " + std::to_string(kv.heads) +
                " heads, which does not divide q's " + std::to_string(qv.heads) + " heads" +
                dims);
  }

  CheckedAttention checked;
  checked.device = device;
  checked.keep_alive = {qv.tensor, kv.tensor, vv.tensor};
  AttentionParams& p = checked.params;
  p.batch = qv.batch;
  p.q_heads = qv.heads;
  p.kv_heads = kv.heads;
  p.q_len = qv.seq;
  p.kv_len = kv.seq;
  p.head_dim = qv.dim;
  p.v_dim = vv.dim;
  p.dtype = q.dtype();
  p.q = qv.tensor.data();
  p.k = kv.tensor.data();
  p.v = vv.tensor.data();
  std::copy(qv.stride, qv.stride + 3, p.q_stride);
  std::copy(kv.stride, kv.stride + 3, p.k_stride);
  std::copy(vv.stride, vv.stride + 3, p.v_stride);
  checked.out_shape = layout == AttentionLayout::BHSD
                          ? Shape{p.batch, p.q_heads, p.q_len, p.v_dim}
                          : Shape{p.batch, p.q_len, p.q_heads, p.v_dim};
  if (layout == AttentionLayout::BHSD) {
    p.out_stride[0] = p.q_heads * p.q_len * p.v_dim;
    p.out_stride[1] = p.q_len * p.v_dim;
    p.out_stride[2] = p.v_dim;
  } else {
    p.out_stride[0] = p.q_len * p.q_heads * p.v_dim;
    p.out_stride[1] = p.v_dim;
    p.out_stride[2] = p.q_heads * p.v_dim;
  }

  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(p.head_dim)));
  if (!std::isfinite(scale)) {
    throw ArgumentError("attention: scale must be finite, got " + std::to_string(scale));
  }
  p.scale = static_cast<float>(scale);
  p.causal = options.causal;
  if (options.sliding_window) {
    if (*options.sliding_window < 1) {
      throw ArgumentError("attention: sliding_window must be >= 1, got " +
                  std::to_string(*options.sliding_window));
    }
    p.sliding_window = *options.sliding_window;
  }

  if (options.attn_mask.defined()) {
    const Tensor& mask = options.attn_mask;
    const Shape target = {p.batch, p.q_heads, p.q_len, p.kv_len};
    if (mask.dtype() != DType::BOOL && !is_attention_dtype(mask.dtype())) {
      throw ArgumentError("attention: attn_mask must be BOOL (true = attend) or F32/F16/BF16 (added to "
                  "the scores), got " + name_of(mask.dtype()));
    }
    if (mask.ndim() < 1 || mask.ndim() > 4) {
      throw ArgumentError("attention: attn_mask must broadcast to [batch, heads, q_len, kv_len] = " +
                  shape_to_string(target) + ", got shape " + shape_to_string(mask.shape()));
    }
    const int64_t skip = 4 - mask.ndim();
    for (int64_t d = 0; d < 4; ++d) {
      if (d < skip) {
        p.mask_stride[d] = 0;
        continue;
      }
      const int64_t size = mask.shape()[d - skip];
      if (size != target[d] && size != 1) {
        throw ArgumentError("attention: attn_mask must broadcast to [batch, heads, q_len, kv_len] = " +
                    shape_to_string(target) + ", got shape " + shape_to_string(mask.shape()));
      }
      p.mask_stride[d] = size == 1 ? 0 : mask.strides()[d - skip];
    }
    p.mask = mask.data();
    p.mask_dtype = mask.dtype();
    checked.keep_alive.push_back(mask);
  }

  if (options.key_padding_mask.defined()) {
    const Tensor& pad = options.key_padding_mask;
    const DType dt = pad.dtype();
    if (dt != DType::BOOL && dt != DType::U8 && dt != DType::I8 && dt != DType::I32 &&
        dt != DType::I64) {
      throw ArgumentError("attention: key_padding_mask must be BOOL or an integer type (1 = keep), got " +
                  name_of(dt));
    }
    if (pad.ndim() != 2 || pad.shape()[0] != p.batch || pad.shape()[1] != p.kv_len) {
      throw ArgumentError("attention: key_padding_mask must be [batch, kv_len] = " +
                  shape_to_string({p.batch, p.kv_len}) + ", got shape " +
                  shape_to_string(pad.shape()));
    }
    p.key_padding = pad.data();
    p.key_padding_dtype = dt;
    p.key_padding_stride[0] = pad.strides()[0];
    p.key_padding_stride[1] = pad.strides()[1];
    checked.keep_alive.push_back(pad);
  }
  return checked;
}

AttentionResult attention(const Tensor& q, const Tensor& k, const Tensor& v,
                          const AttentionOptions& options) {
  CheckedAttention checked = check_attention(q, k, v, options);
  if (checked.device.type == DeviceType::CUDA) {
#ifdef HFPORT_WITH_CUDA
    return cuda::attention(checked, options.return_lse);
#else
    throw DeviceError("attention: the tensors are on " + device_name(checked.device) +
                      ", and this build has no CUDA (HFPORT_CUDA=OFF)");
#endif
  }
  AttentionParams& p = checked.params;
  AttentionResult result;
  result.out = Tensor::empty(p.dtype, checked.out_shape);
  p.out = result.out.data();
  if (options.return_lse) {
    result.lse = Tensor::empty(DType::F32, {p.batch, p.q_heads, p.q_len});
    p.lse = result.lse.data_as<float>();
  }
  attention_cpu(p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The reference: every score formed, float64 throughout, the masks applied one element at a time
// from the tensors' own strides.

AttentionResult attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options) {
  const CheckedAttention checked = check_attention(q, k, v, options);
  if (checked.device.type != DeviceType::CPU) {
    throw DeviceError("attention_reference: runs on the host; the tensors are on " +
                      device_name(checked.device));
  }
  const AttentionParams& p = checked.params;
  AttentionResult result;
  result.out = Tensor::empty(DType::F64, checked.out_shape);
  result.lse = Tensor::empty(DType::F64, {p.batch, p.q_heads, p.q_len});
  double* out = result.out.data_as<double>();
  double* lse = result.lse.data_as<double>();
  const double scale = static_cast<double>(p.scale);
  const double inf = std::numeric_limits<double>::infinity();
  const int64_t group = p.q_heads / p.kv_heads;
  std::vector<double> scores(static_cast<size_t>(p.kv_len));
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.q_heads; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < p.q_len; ++i) {
        const int64_t pos = i + p.kv_len - p.q_len;
        const int64_t q_at = b * p.q_stride[0] + h * p.q_stride[1] + i * p.q_stride[2];
        double row_max = -inf;
        for (int64_t j = 0; j < p.kv_len; ++j) {
          const int64_t k_at = b * p.k_stride[0] + hk * p.k_stride[1] + j * p.k_stride[2];
          double dot = 0.0;
          for (int64_t d = 0; d < p.head_dim; ++d) {
            dot += load_as_f64(p.q, p.dtype, static_cast<size_t>(q_at + d)) *
                   load_as_f64(p.k, p.dtype, static_cast<size_t>(k_at + d));
          }
          double score = dot * scale;
          if (p.causal && j > pos) score = -inf;
          if (p.sliding_window > 0 && pos - j >= p.sliding_window) score = -inf;
          if (p.key_padding &&
              load_as_f64(p.key_padding, p.key_padding_dtype,
                          static_cast<size_t>(b * p.key_padding_stride[0] +
                                              j * p.key_padding_stride[1])) == 0.0) {
            score = -inf;
          }
          if (p.mask) {
            const double m = load_as_f64(p.mask, p.mask_dtype,
                                         static_cast<size_t>(b * p.mask_stride[0] +
                                                             h * p.mask_stride[1] +
                                                             i * p.mask_stride[2] +
                                                             j * p.mask_stride[3]));
            score = p.mask_dtype == DType::BOOL ? (m == 0.0 ? -inf : score) : score + m;
          }
          scores[j] = score;
          row_max = std::max(row_max, score);
        }
        double sum = 0.0;
        if (row_max > -inf) {
          for (int64_t j = 0; j < p.kv_len; ++j) {
            scores[j] = std::exp(scores[j] - row_max);
            sum += scores[j];
          }
        }
        lse[(b * p.q_heads + h) * p.q_len + i] = sum > 0.0 ? row_max + std::log(sum) : -inf;
        const int64_t out_at = options.layout == AttentionLayout::BHSD
                                   ? ((b * p.q_heads + h) * p.q_len + i) * p.v_dim
                                   : ((b * p.q_len + i) * p.q_heads + h) * p.v_dim;
        for (int64_t c = 0; c < p.v_dim; ++c) {
          double acc = 0.0;
          if (sum > 0.0) {
            for (int64_t j = 0; j < p.kv_len; ++j) {
              const int64_t v_at = b * p.v_stride[0] + hk * p.v_stride[1] + j * p.v_stride[2];
              acc += scores[j] * load_as_f64(p.v, p.dtype, static_cast<size_t>(v_at + c));
            }
            acc /= sum;
          }
          out[out_at + c] = acc;
        }
      }
    }
  }
  if (!options.return_lse) result.lse = Tensor();
  return result;
}

}  // namespace hfport
