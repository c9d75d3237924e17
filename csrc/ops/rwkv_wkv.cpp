// The entry points of rwkv_wkv and rwkv_wkv_update: checks, operands (w, u and the state as F32,
// the mask as U8), outputs, and the float64 reference; the CPU kernel is kernels/cpu/rwkv_wkv.cpp,
// CUDA tensors go to ops/cuda/rwkv_wkv.cpp after the same checks.
#include "ops/rwkv_wkv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/rwkv_wkv.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/rwkv_wkv.h"
#endif

namespace hfport {

namespace {

constexpr const char* kWkv = "rwkv_wkv";
constexpr const char* kUpdate = "rwkv_wkv_update";
// The max of an empty state, as transformers' rwkv_linear_attention_cpu starts it.
constexpr float kEmptyMax = -1e38f;

double element_f64(const Tensor& t, std::initializer_list<int64_t> index) {
  int64_t offset = 0;
  int64_t i = 0;
  for (int64_t v : index) offset += v * t.strides()[i++];
  return load_as_f64(t.data(), t.dtype(), static_cast<size_t>(offset));
}

void check_channel_vector(const char* op, const char* arg, const Tensor& t, int64_t channels) {
  require_float_type(op, arg, t);
  require_shape(op, arg, t, {channels}, "[C]");
}

// The three state tensors: all given or none; each [batch, C] of a float type.
bool check_state(const char* op, const RwkvWkvState& s, int64_t batch, int64_t channels) {
  const int given = s.num.defined() + s.den.defined() + s.max.defined();
  if (given == 0) return false;
  if (given != 3) {
    throw ArgumentError(std::string(op) + ": the state needs num, den and max together, got " +
                        std::to_string(given) + " of the three");
  }
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"state num", &s.num},
                                {"state den", &s.den},
                                {"state max", &s.max}}) {
    require_float_type(op, name, *t);
    require_shape(op, name, *t, {batch, channels}, "[batch, C]");
  }
  return true;
}

// The mask's dtype and shape (on either device; its values are read on the host).
void check_mask(const char* op, const Tensor& mask, int64_t batch, int64_t seqlen) {
  const DType d = mask.dtype();
  if (d != DType::BOOL && d != DType::U8 && d != DType::I32 && d != DType::I64) {
    throw ArgumentError(std::string(op) + ": mask must have dtype BOOL, U8, I32 or I64, got " +
                        std::string(dtype_name(d)));
  }
  require_shape(op, "mask", mask, {batch, seqlen}, "[batch, L]");
}

// The host mask as contiguous U8 0/1; ArgumentError for another dtype or a value other than 0
// and 1.
Tensor mask_u8(const char* op, const Tensor& mask, int64_t batch, int64_t seqlen) {
  check_mask(op, mask, batch, seqlen);
  Tensor out = Tensor::empty(DType::U8, {batch, seqlen});
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seqlen; ++t) {
      const double value = element_f64(mask, {b, t});
      if (value != 0.0 && value != 1.0) {
        throw ArgumentError(std::string(op) + ": mask must hold 0 and 1 only, got " +
                            std::to_string(static_cast<int64_t>(value)) + " at [" +
                            std::to_string(b) + ", " + std::to_string(t) + "]");
      }
      out.data_as<uint8_t>()[b * seqlen + t] = static_cast<uint8_t>(value);
    }
  }
  return out;
}

Device wkv_device(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v,
                  const RwkvWkvOptions& o) {
  return op_device(kWkv, {{"w", &w},
                          {"u", &u},
                          {"k", &k},
                          {"v", &v},
                          {"state num", &o.state.num},
                          {"state den", &o.state.den},
                          {"state max", &o.state.max},
                          {"mask", &o.mask},
                          {"out", &o.out}});
}

}  // namespace

RwkvWkvParams rwkv_wkv_base_params(const RwkvWkvShapes& s, const Tensor& k, const Tensor& v,
                                   const Tensor& w32, const Tensor& u32) {
  RwkvWkvParams p;
  p.batch = s.batch;
  p.seqlen = s.seqlen;
  p.channels = s.channels;
  p.dtype = k.dtype();
  p.k = k.data();
  read_strides(k, {&p.k_batch_stride, &p.k_seq_stride, &p.k_channel_stride});
  p.v = v.data();
  read_strides(v, {&p.v_batch_stride, &p.v_seq_stride, &p.v_channel_stride});
  p.w = w32.data_as<float>();
  p.u = u32.data_as<float>();
  return p;
}

RwkvWkvParams rwkv_wkv_update_params(const RwkvWkvShapes& s, const Tensor& k, const Tensor& v,
                                     const Tensor& w32, const Tensor& u32,
                                     const RwkvWkvState& state, const Tensor& out) {
  // One step of the scan: k and v seen as [batch, 1, C].
  const Tensor k3(k.storage(), k.byte_offset(), k.dtype(), {s.batch, 1, s.channels},
                  {k.strides()[0], 0, k.strides()[1]});
  const Tensor v3(v.storage(), v.byte_offset(), v.dtype(), {s.batch, 1, s.channels},
                  {v.strides()[0], 0, v.strides()[1]});
  RwkvWkvParams p = rwkv_wkv_base_params(s, k3, v3, w32, u32);
  p.num = state.num.data_as<float>();
  p.den = state.den.data_as<float>();
  p.max = state.max.data_as<float>();
  p.out = out.data();
  return p;
}

RwkvWkvShapes check_rwkv_wkv_arguments(const Tensor& w, const Tensor& u, const Tensor& k,
                                       const Tensor& v, const RwkvWkvOptions& o) {
  require_float_type(kWkv, "k", k);
  require_ndim(kWkv, "k", k, 3, "[batch, L, C]");
  RwkvWkvShapes s{k.shape()[0], k.shape()[1], k.shape()[2]};
  require_float_type(kWkv, "v", v);
  require_shape(kWkv, "v", v, k.shape(), "[batch, L, C]");
  require_same_dtype(kWkv, "v", v, "k", k);
  check_channel_vector(kWkv, "w", w, s.channels);
  check_channel_vector(kWkv, "u", u, s.channels);
  check_state(kWkv, o.state, s.batch, s.channels);
  if (o.mask.defined()) {
    // A CUDA mask's values are checked when the CUDA side brings it to the host (rwkv_wkv_mask_u8).
    if (o.mask.device().type == DeviceType::CPU) {
      mask_u8(kWkv, o.mask, s.batch, s.seqlen);
    } else {
      check_mask(kWkv, o.mask, s.batch, s.seqlen);
    }
  }
  return s;
}

Tensor rwkv_wkv_mask_u8(const Tensor& mask, int64_t batch, int64_t seqlen) {
  return mask_u8(kWkv, mask, batch, seqlen);
}

RwkvWkvResult rwkv_wkv(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v,
                       const RwkvWkvOptions& o) {
  const Device device = wkv_device(w, u, k, v, o);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::rwkv_wkv(w, u, k, v, o);
#endif
  require_host_device(kWkv, device);
  const RwkvWkvShapes s = check_rwkv_wkv_arguments(w, u, k, v, o);
  RwkvWkvResult result;
  result.out = output_tensor(kWkv, o.out, k.dtype(), k.shape());
  // The outgoing state starts as a copy of the incoming one; the kernel advances it in place.
  if (o.state.num.defined()) {
    result.state = {as_f32_contiguous(o.state.num).clone(), as_f32_contiguous(o.state.den).clone(),
                    as_f32_contiguous(o.state.max).clone()};
  } else {
    result.state = {Tensor::zeros(DType::F32, {s.batch, s.channels}),
                    Tensor::zeros(DType::F32, {s.batch, s.channels}),
                    Tensor::empty(DType::F32, {s.batch, s.channels})};
    std::fill_n(result.state.max.data_as<float>(), s.batch * s.channels, kEmptyMax);
  }
  if (k.numel() == 0) return result;
  const Tensor w32 = as_f32_contiguous(w);
  const Tensor u32 = as_f32_contiguous(u);
  const Tensor mask = o.mask.defined() ? mask_u8(kWkv, o.mask, s.batch, s.seqlen) : Tensor();
  RwkvWkvParams p = rwkv_wkv_base_params(s, k, v, w32, u32);
  p.mask = mask.defined() ? mask.data_as<uint8_t>() : nullptr;
  p.num = result.state.num.data_as<float>();
  p.den = result.state.den.data_as<float>();
  p.max = result.state.max.data_as<float>();
  p.out = result.out.data();
  rwkv_wkv_cpu(p);
  return result;
}

RwkvWkvResult rwkv_wkv_reference(const Tensor& w, const Tensor& u, const Tensor& k,
                                 const Tensor& v, const RwkvWkvOptions& o) {
  require_host_device("rwkv_wkv_reference", wkv_device(w, u, k, v, o));
  const RwkvWkvShapes s = check_rwkv_wkv_arguments(w, u, k, v, o);
  const bool has_state = o.state.num.defined();
  const Tensor mask = o.mask.defined() ? mask_u8(kWkv, o.mask, s.batch, s.seqlen) : Tensor();
  RwkvWkvResult r;
  r.out = Tensor::empty(DType::F64, k.shape());
  r.state = {Tensor::empty(DType::F64, {s.batch, s.channels}),
             Tensor::empty(DType::F64, {s.batch, s.channels}),
             Tensor::empty(DType::F64, {s.batch, s.channels})};
  double* out = r.out.data_as<double>();
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t c = 0; c < s.channels; ++c) {
      const double decay = -std::exp(element_f64(w, {c}));
      const double bonus = element_f64(u, {c});
      double running_max = has_state ? element_f64(o.state.max, {b, c}) : kEmptyMax;
      // The sums themselves (exp(-1e38) is 0: an empty state holds nothing).
      const double scale = std::exp(running_max);
      double num = has_state ? element_f64(o.state.num, {b, c}) * scale : 0.0;
      double den = has_state ? element_f64(o.state.den, {b, c}) * scale : 0.0;
      for (int64_t t = 0; t < s.seqlen; ++t) {
        double& y = out[(b * s.seqlen + t) * s.channels + c];
        if (mask.defined() && mask.data_as<uint8_t>()[b * s.seqlen + t] == 0) {
          y = 0.0;
          continue;
        }
        const double kt = element_f64(k, {b, t, c}), vt = element_f64(v, {b, t, c});
        const double now = std::exp(bonus + kt);
        y = (num + now * vt) / (den + now);
        num = std::exp(decay) * num + std::exp(kt) * vt;
        den = std::exp(decay) * den + std::exp(kt);
        running_max = std::max(running_max + decay, kt);
      }
      const double unscale = den == 0.0 && num == 0.0 ? 0.0 : std::exp(-running_max);
      r.state.num.data_as<double>()[b * s.channels + c] = num * unscale;
      r.state.den.data_as<double>()[b * s.channels + c] = den * unscale;
      r.state.max.data_as<double>()[b * s.channels + c] = running_max;
    }
  }
  return r;
}

RwkvWkvShapes check_rwkv_wkv_update_arguments(const RwkvWkvState& state, const Tensor& w,
                                              const Tensor& u, const Tensor& k, const Tensor& v) {
  require_float_type(kUpdate, "k", k);
  require_ndim(kUpdate, "k", k, 2, "[batch, C]");
  const RwkvWkvShapes s{k.shape()[0], 1, k.shape()[1]};
  require_float_type(kUpdate, "v", v);
  require_shape(kUpdate, "v", v, k.shape(), "[batch, C]");
  require_same_dtype(kUpdate, "v", v, "k", k);
  check_channel_vector(kUpdate, "w", w, s.channels);
  check_channel_vector(kUpdate, "u", u, s.channels);
  if (!check_state(kUpdate, state, s.batch, s.channels)) {
    throw ArgumentError(std::string(kUpdate) + ": the state (num, den, max) is required");
  }
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"state num", &state.num},
                                {"state den", &state.den},
                                {"state max", &state.max}}) {
    if (t->dtype() != DType::F32 || !t->is_contiguous()) {
      throw ArgumentError(std::string(kUpdate) + ": " + name + " is updated in place and must "
                          "be a contiguous F32 tensor, got " + std::string(dtype_name(t->dtype())) +
                          (t->is_contiguous() ? "" : " (not contiguous)"));
    }
  }
  return s;
}

Tensor rwkv_wkv_update(const RwkvWkvState& state, const Tensor& w, const Tensor& u,
                       const Tensor& k, const Tensor& v) {
  const Device device = op_device(kUpdate, {{"state num", &state.num},
                                            {"state den", &state.den},
                                            {"state max", &state.max},
                                            {"w", &w},
                                            {"u", &u},
                                            {"k", &k},
                                            {"v", &v}});
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::rwkv_wkv_update(state, w, u, k, v);
#endif
  require_host_device(kUpdate, device);
  const RwkvWkvShapes s = check_rwkv_wkv_update_arguments(state, w, u, k, v);
  Tensor y = Tensor::empty(k.dtype(), k.shape());
  if (k.numel() == 0) return y;
  const Tensor w32 = as_f32_contiguous(w);
  const Tensor u32 = as_f32_contiguous(u);
  const RwkvWkvParams p = rwkv_wkv_update_params(s, k, v, w32, u32, state, y);
  rwkv_wkv_cpu(p);
  return y;
}

}  // namespace hfport
