// The entry points of ssd_scan and ssd_state_update: checks, operands (A, D, dt_bias and the
// initial states as F32; B and C packed for the kernel), outputs, and the float64 references; the
// CPU kernels are kernels/cpu/ssd_scan.cpp, CUDA tensors go to ops/cuda/ssd_scan.cpp after the
// same checks.
#include "ops/ssd_scan.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/ssd_scan.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/ssd_scan.h"
#endif

namespace hfport {

namespace {

constexpr const char* kScan = "ssd_scan";
constexpr const char* kUpdate = "ssd_state_update";

// Element `index` of any tensor, through its strides, as float64.
double element_f64(const Tensor& t, std::initializer_list<int64_t> index) {
  int64_t offset = 0;
  int64_t i = 0;
  for (int64_t v : index) offset += v * t.strides()[i++];
  return load_as_f64(t.data(), t.dtype(), static_cast<size_t>(offset));
}

void check_head_vector(const char* op, const char* arg, const Tensor& t, int64_t heads) {
  if (!t.defined()) return;
  require_float_type(op, arg, t);
  require_shape(op, arg, t, {heads}, "[H]");
}

void check_dt_limits(const char* op, double lo, double hi) {
  if (std::isnan(lo) || std::isnan(hi) || lo > hi) {
    std::ostringstream message;
    message << op << ": the dt limits must satisfy dt_min <= dt_max, got dt_min = " << lo
            << ", dt_max = " << hi;
    throw ArgumentError(message.str());
  }
}

// The group count G of B [..., G, N] (its dimension `dim`): at least 1 and dividing H.
int64_t groups_of(const char* op, const Tensor& B, int64_t dim, int64_t heads) {
  const int64_t groups = B.shape()[dim];
  if (groups < 1 || heads % groups != 0) {
    throw ArgumentError(std::string(op) + ": B's group count G = " + std::to_string(groups) +
                        " must be >= 1 and divide the head count H = " + std::to_string(heads));
  }
  return groups;
}

// B or C [batch, L, G, N], any float type and strides, as F32 [batch, G, L, N]: one step's N
// values adjacent, one group's steps one after another.
Tensor pack_group_major(const Tensor& t) {
  return pack_bgln_f32(t, {t.shape()[0], t.shape()[2], t.shape()[1], t.shape()[3]},
                       {t.strides()[0], t.strides()[2], t.strides()[1], t.strides()[3]});
}

Device scan_device(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                   const Tensor& C, const SsdScanOptions& o) {
  return op_device(kScan, {{"x", &x},
                           {"dt", &dt},
                           {"A", &A},
                           {"B", &B},
                           {"C", &C},
                           {"D", &o.D},
                           {"dt_bias", &o.dt_bias},
                           {"initial_states", &o.initial_states},
                           {"out", &o.out}});
}

Device update_device(const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A,
                     const Tensor& B, const Tensor& C, const SsdStateUpdateOptions& o) {
  return op_device(kUpdate, {{"state", &state},
                             {"x", &x},
                             {"dt", &dt},
                             {"A", &A},
                             {"B", &B},
                             {"C", &C},
                             {"D", &o.D},
                             {"dt_bias", &o.dt_bias},
                             {"out", &o.out}});
}

// dt as the recurrence uses it, in float64: bias, softplus (torch's threshold 20), clamp.
double prepared_dt(double raw, double bias, bool softplus, double lo, double hi) {
  double v = raw + bias;
  if (softplus && v <= 20.0) v = std::log1p(std::exp(v));
  return std::min(std::max(v, lo), hi);
}

float limit_f32(double v) { return static_cast<float>(v); }  // inf stays inf

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data_as<float>() : nullptr; }

}  // namespace

SsdScanParams ssd_scan_params(const SsdShapes& s, const Tensor& x, const Tensor& dt,
                              const SsdF32Operands& f32, const SsdScanOptions& options,
                              const Tensor& out, const Tensor& final_states) {
  SsdScanParams p;
  p.batch = s.batch;
  p.seqlen = s.seqlen;
  p.heads = s.heads;
  p.head_dim = s.head_dim;
  p.dstate = s.dstate;
  p.n_groups = s.n_groups;
  p.chunk_size = options.chunk_size;
  p.dtype = x.dtype();
  p.x = x.data();
  read_strides(x, {&p.x_batch_stride, &p.x_seq_stride, &p.x_head_stride, &p.x_dim_stride});
  p.dt = dt.data();
  read_strides(dt, {&p.dt_batch_stride, &p.dt_seq_stride, &p.dt_head_stride});
  p.A = f32.A.data_as<float>();
  p.B = f32.B.data_as<float>();
  p.C = f32.C.data_as<float>();
  p.D = data_or_null(f32.D);
  p.dt_bias = data_or_null(f32.dt_bias);
  p.dt_softplus = options.dt_softplus;
  p.dt_min = limit_f32(options.dt_min);
  p.dt_max = limit_f32(options.dt_max);
  p.initial_states = data_or_null(f32.initial_states);
  p.out = out.data();
  p.final_states = final_states.defined() ? final_states.data_as<float>() : nullptr;
  return p;
}

SsdStateUpdateParams ssd_state_update_params(const SsdShapes& s, const Tensor& state,
                                             const Tensor& x, const Tensor& dt,
                                             const SsdF32Operands& f32,
                                             const SsdStateUpdateOptions& options,
                                             const Tensor& out) {
  SsdStateUpdateParams p;
  p.batch = s.batch;
  p.heads = s.heads;
  p.head_dim = s.head_dim;
  p.dstate = s.dstate;
  p.n_groups = s.n_groups;
  p.dtype = x.dtype();
  p.x = x.data();
  read_strides(x, {&p.x_batch_stride, &p.x_head_stride, &p.x_dim_stride});
  p.dt = dt.data();
  read_strides(dt, {&p.dt_batch_stride, &p.dt_head_stride});
  p.state_dtype = state.dtype();
  p.state = state.data();
  read_strides(state, {&p.state_batch_stride, &p.state_head_stride, &p.state_dim_stride,
                       &p.state_state_stride});
  p.A = f32.A.data_as<float>();
  p.B = f32.B.data_as<float>();
  p.C = f32.C.data_as<float>();
  p.D = data_or_null(f32.D);
  p.dt_bias = data_or_null(f32.dt_bias);
  p.dt_softplus = options.dt_softplus;
  p.dt_min = limit_f32(options.dt_min);
  p.dt_max = limit_f32(options.dt_max);
  p.out = out.data();
  return p;
}

SsdShapes check_ssd_scan_arguments(const Tensor& x, const Tensor& dt, const Tensor& A,
                                   const Tensor& B, const Tensor& C, const SsdScanOptions& o) {
  require_float_type(kScan, "x", x);
  require_ndim(kScan, "x", x, 4, "[batch, L, H, P]");
  SsdShapes s;
  s.batch = x.shape()[0];
  s.seqlen = x.shape()[1];
  s.heads = x.shape()[2];
  s.head_dim = x.shape()[3];
  require_float_type(kScan, "dt", dt);
  require_shape(kScan, "dt", dt, {s.batch, s.seqlen, s.heads}, "[batch, L, H]");
  require_same_dtype(kScan, "dt", dt, "x", x);
  require_float_type(kScan, "A", A);
  require_shape(kScan, "A", A, {s.heads}, "[H]");
  require_float_type(kScan, "B", B);
  require_ndim(kScan, "B", B, 4, "[batch, L, G, N]");
  s.n_groups = groups_of(kScan, B, 2, s.heads);
  s.dstate = B.shape()[3];
  require_shape(kScan, "B", B, {s.batch, s.seqlen, s.n_groups, s.dstate}, "[batch, L, G, N]");
  require_float_type(kScan, "C", C);
  require_shape(kScan, "C", C, B.shape(), "the shape of B");
  check_head_vector(kScan, "D", o.D, s.heads);
  check_head_vector(kScan, "dt_bias", o.dt_bias, s.heads);
  if (o.initial_states.defined()) {
    require_float_type(kScan, "initial_states", o.initial_states);
    require_shape(kScan, "initial_states", o.initial_states,
                  {s.batch, s.heads, s.head_dim, s.dstate}, "[batch, H, P, N]");
  }
  if (o.chunk_size < 1) {
    throw ArgumentError(std::string(kScan) + ": chunk_size must be >= 1, got " +
                        std::to_string(o.chunk_size));
  }
  check_dt_limits(kScan, o.dt_min, o.dt_max);
  return s;
}

SsdScanResult ssd_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                       const Tensor& C, const SsdScanOptions& options) {
  const Device device = scan_device(x, dt, A, B, C, options);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::ssd_scan(x, dt, A, B, C, options);
#endif
  require_host_device(kScan, device);
  const SsdShapes s = check_ssd_scan_arguments(x, dt, A, B, C, options);
  SsdScanResult result;
  result.out = output_tensor(kScan, options.out, x.dtype(), x.shape());
  const Tensor initial =
      options.initial_states.defined() ? as_f32_contiguous(options.initial_states) : Tensor();
  if (options.return_final_states) {
    result.final_states = Tensor::empty(DType::F32, {s.batch, s.heads, s.head_dim, s.dstate});
  }
  if (x.numel() == 0 || s.dstate == 0) {
    // Nothing to scan: the output holds D x (zero rows when L = 0), the state is the one given.
    const SsdScanResult ref = ssd_scan_reference(x, dt, A, B, C, options);
    dispatch_float(x.dtype(), [&](auto tag) {
      using E = decltype(tag);
      auto* out = result.out.data_as<typename E::Stored>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        out[i] = E::store(static_cast<float>(ref.out.data_as<double>()[i]));
      }
    });
    if (result.final_states.defined()) {
      float* fin = result.final_states.data_as<float>();
      for (int64_t i = 0; i < result.final_states.numel(); ++i) {
        fin[i] = initial.defined() ? initial.data_as<float>()[i] : 0.0f;
      }
    }
    return result;
  }
  SsdF32Operands f32;
  f32.A = as_f32_contiguous(A);
  f32.B = pack_group_major(B);
  f32.C = pack_group_major(C);
  if (options.D.defined()) f32.D = as_f32_contiguous(options.D);
  if (options.dt_bias.defined()) f32.dt_bias = as_f32_contiguous(options.dt_bias);
  f32.initial_states = initial;
  const SsdScanParams p =
      ssd_scan_params(s, x, dt, f32, options, result.out, result.final_states);
  ssd_scan_cpu(p);
  return result;
}

SsdScanResult ssd_scan_reference(const Tensor& x, const Tensor& dt, const Tensor& A,
                                 const Tensor& B, const Tensor& C, const SsdScanOptions& o) {
  require_host_device("ssd_scan_reference", scan_device(x, dt, A, B, C, o));
  const SsdShapes s = check_ssd_scan_arguments(x, dt, A, B, C, o);
  SsdScanResult result;
  result.out = Tensor::empty(DType::F64, x.shape());
  result.final_states = Tensor::empty(DType::F64, {s.batch, s.heads, s.head_dim, s.dstate});
  double* out = result.out.data_as<double>();
  double* fin = result.final_states.data_as<double>();
  const int64_t per_group = s.heads / std::max<int64_t>(s.n_groups, 1);
  std::vector<double> state(s.dstate);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / per_group;
      const double a = element_f64(A, {h});
      const double bias = o.dt_bias.defined() ? element_f64(o.dt_bias, {h}) : 0.0;
      const double d_skip = o.D.defined() ? element_f64(o.D, {h}) : 0.0;
      for (int64_t p = 0; p < s.head_dim; ++p) {
        for (int64_t n = 0; n < s.dstate; ++n) {
          state[n] = o.initial_states.defined() ? element_f64(o.initial_states, {b, h, p, n}) : 0.0;
        }
        for (int64_t t = 0; t < s.seqlen; ++t) {
          const double step = prepared_dt(element_f64(dt, {b, t, h}), bias, o.dt_softplus,
                                          o.dt_min, o.dt_max);
          const double decay = std::exp(step * a);
          const double xv = element_f64(x, {b, t, h, p});
          double y = 0.0;
          for (int64_t n = 0; n < s.dstate; ++n) {
            state[n] = decay * state[n] + step * xv * element_f64(B, {b, t, g, n});
            y += state[n] * element_f64(C, {b, t, g, n});
          }
          out[((b * s.seqlen + t) * s.heads + h) * s.head_dim + p] = y + d_skip * xv;
        }
        std::copy(state.begin(), state.end(), fin + ((b * s.heads + h) * s.head_dim + p) * s.dstate);
      }
    }
  }
  return result;
}

// ---- One decoding step ----

SsdShapes check_ssd_state_update_arguments(const Tensor& state, const Tensor& x, const Tensor& dt,
                                           const Tensor& A, const Tensor& B, const Tensor& C,
                                           const SsdStateUpdateOptions& o) {
  require_float_type(kUpdate, "state", state);
  require_ndim(kUpdate, "state", state, 4, "[batch, H, P, N]");
  SsdShapes s;
  s.batch = state.shape()[0];
  s.seqlen = 1;
  s.heads = state.shape()[1];
  s.head_dim = state.shape()[2];
  s.dstate = state.shape()[3];
  require_float_type(kUpdate, "x", x);
  require_shape(kUpdate, "x", x, {s.batch, s.heads, s.head_dim}, "[batch, H, P]");
  require_float_type(kUpdate, "dt", dt);
  require_shape(kUpdate, "dt", dt, {s.batch, s.heads}, "[batch, H]");
  require_same_dtype(kUpdate, "dt", dt, "x", x);
  require_float_type(kUpdate, "A", A);
  require_shape(kUpdate, "A", A, {s.heads}, "[H]");
  require_float_type(kUpdate, "B", B);
  require_ndim(kUpdate, "B", B, 3, "[batch, G, N]");
  s.n_groups = groups_of(kUpdate, B, 1, s.heads);
  require_shape(kUpdate, "B", B, {s.batch, s.n_groups, s.dstate}, "[batch, G, N]");
  require_float_type(kUpdate, "C", C);
  require_shape(kUpdate, "C", C, B.shape(), "the shape of B");
  check_head_vector(kUpdate, "D", o.D, s.heads);
  check_head_vector(kUpdate, "dt_bias", o.dt_bias, s.heads);
  check_dt_limits(kUpdate, o.dt_min, o.dt_max);
  return s;
}

Tensor ssd_state_update(const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A,
                        const Tensor& B, const Tensor& C, const SsdStateUpdateOptions& o) {
  const Device device = update_device(state, x, dt, A, B, C, o);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::ssd_state_update(state, x, dt, A, B, C, o);
#endif
  require_host_device(kUpdate, device);
  const SsdShapes s = check_ssd_state_update_arguments(state, x, dt, A, B, C, o);
  Tensor y = output_tensor(kUpdate, o.out, x.dtype(), x.shape());
  if (y.numel() == 0) return y;
  SsdF32Operands f32;
  f32.A = as_f32_contiguous(A);
  f32.B = as_f32_contiguous(B);
  f32.C = as_f32_contiguous(C);
  if (o.D.defined()) f32.D = as_f32_contiguous(o.D);
  if (o.dt_bias.defined()) f32.dt_bias = as_f32_contiguous(o.dt_bias);
  const SsdStateUpdateParams p = ssd_state_update_params(s, state, x, dt, f32, o, y);
  ssd_state_update_cpu(p);
  return y;
}

SsdStateUpdateReference ssd_state_update_reference(const Tensor& state, const Tensor& x,
                                                   const Tensor& dt, const Tensor& A,
                                                   const Tensor& B, const Tensor& C,
                                                   const SsdStateUpdateOptions& o) {
  require_host_device("ssd_state_update_reference", update_device(state, x, dt, A, B, C, o));
  const SsdShapes s = check_ssd_state_update_arguments(state, x, dt, A, B, C, o);
  SsdStateUpdateReference r;
  r.y = Tensor::empty(DType::F64, {s.batch, s.heads, s.head_dim});
  r.state = Tensor::empty(DType::F64, {s.batch, s.heads, s.head_dim, s.dstate});
  double* y = r.y.data_as<double>();
  double* next = r.state.data_as<double>();
  const int64_t per_group = s.heads / s.n_groups;
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / per_group;
      const double step = prepared_dt(element_f64(dt, {b, h}),
                                      o.dt_bias.defined() ? element_f64(o.dt_bias, {h}) : 0.0,
                                      o.dt_softplus, o.dt_min, o.dt_max);
      const double decay = std::exp(step * element_f64(A, {h}));
      const double d_skip = o.D.defined() ? element_f64(o.D, {h}) : 0.0;
      for (int64_t p = 0; p < s.head_dim; ++p) {
        const double xv = element_f64(x, {b, h, p});
        double acc = 0.0;
        for (int64_t n = 0; n < s.dstate; ++n) {
          const double hn = decay * element_f64(state, {b, h, p, n}) +
                            step * xv * element_f64(B, {b, g, n});
          next[((b * s.heads + h) * s.head_dim + p) * s.dstate + n] = hn;
          acc += hn * element_f64(C, {b, g, n});
        }
        y[(b * s.heads + h) * s.head_dim + p] = acc + d_skip * xv;
      }
    }
  }
  return r;
}

}  // namespace hfport
