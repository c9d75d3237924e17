// The entry point of the RoPE rotation: plan_rope's checks and kernel parameters (shared with the
// CUDA side, ops/cuda/rope.cpp), device dispatch and outputs, and the float64 reference; the CPU
// kernel is kernels/cpu/rope.cpp, the frequency tables ops/rope_frequencies.cpp.
#include "ops/rope.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cpu/rope.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/rope.h"
#endif

namespace hfport {

namespace {

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
