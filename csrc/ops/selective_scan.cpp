// The entry points of selective_scan and selective_state_update: checks, device dispatch, operands
// (A, D and the biases as F32, B and C packed for the CPU kernel) and outputs, and the float64
// references; the CPU kernels are kernels/cpu/selective_scan.cpp.
#include "ops/selective_scan.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/selective_scan.h"
#include "ops/tensor_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/selective_scan.h"
#endif

namespace hfport {

namespace {

constexpr const char* kScan = "selective_scan";
constexpr const char* kUpdate = "selective_state_update";

// Element `index` (one index per dimension) of any tensor, through its strides, as float64.
double element_f64(const Tensor& t, std::initializer_list<int64_t> index) {
  int64_t offset = 0;
  int64_t i = 0;
  for (int64_t v : index) offset += v * t.strides()[i++];
  return load_as_f64(t.data(), t.dtype(), static_cast<size_t>(offset));
}

// N and the B/C layout from B's rank; then the shapes of B and C.
void check_bc(const char* op, const Tensor& B, const Tensor& C, int64_t batch, int64_t dim,
              int64_t seqlen, int64_t* dstate, int64_t* n_groups) {
  require_float_type(op, "B", B);
  require_float_type(op, "C", C);
  if (B.ndim() == 2) {
    *dstate = B.shape()[1];
    *n_groups = 0;
    require_shape(op, "B", B, {dim, *dstate}, "[dim, N]");
  } else if (B.ndim() == 3) {
    *dstate = B.shape()[1];
    *n_groups = 1;
    require_shape(op, "B", B, {batch, *dstate, seqlen}, "[batch, N, L]");
  } else if (B.ndim() == 4) {
    *n_groups = B.shape()[1];
    *dstate = B.shape()[2];
    if (*n_groups <= 0 || dim % *n_groups != 0) {
      throw ArgumentError(std::string(op) + ": B's group count G = " + std::to_string(*n_groups) +
                  " must divide dim = " + std::to_string(dim));
    }
    require_shape(op, "B", B, {batch, *n_groups, *dstate, seqlen}, "[batch, G, N, L]");
  } else {
    throw ArgumentError(std::string(op) + ": B must be [dim, N], [batch, N, L] or [batch, G, N, L], got " +
                shape_to_string(B.shape()));
  }
  require_shape(op, "C", C, B.shape(), "the shape of B");
}

void check_optional_vector(const char* op, const char* arg, const Tensor& t, int64_t dim) {
  if (!t.defined()) return;
  require_float_type(op, arg, t);
  require_shape(op, arg, t, {dim}, "[dim]");
}

// B or C per batch and time, [batch, N, L] or [batch, G, N, L] with any strides, copied to F32
// [batch, G, L, N] so that one time step's N values are adjacent.
Tensor pack_time_varying(const Tensor& t) {
  const bool grouped = t.ndim() == 4;
  const int64_t groups = grouped ? t.shape()[1] : 1;
  const int64_t n = t.shape()[grouped ? 2 : 1];
  const int64_t seqlen = t.shape()[grouped ? 3 : 2];
  return pack_bgln_f32(t, {t.shape()[0], groups, seqlen, n},
                       {t.strides()[0], grouped ? t.strides()[1] : 0,
                        t.strides()[grouped ? 3 : 2], t.strides()[grouped ? 2 : 1]});
}

Device scan_device(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                   const Tensor& C, const SelectiveScanOptions& o) {
  return op_device(kScan, {{"u", &u},
                           {"delta", &delta},
                           {"A", &A},
                           {"B", &B},
                           {"C", &C},
                           {"D", &o.D},
                           {"z", &o.z},
                           {"delta_bias", &o.delta_bias},
                           {"out", &o.out}});
}

}  // namespace

ScanShapes check_selective_scan_arguments(const Tensor& u, const Tensor& delta, const Tensor& A,
                                          const Tensor& B, const Tensor& C,
                                          const SelectiveScanOptions& o) {
  require_float_type(kScan, "u", u);
  require_ndim(kScan, "u", u, 3, "[batch, dim, L]");
  ScanShapes s{u.shape()[0], u.shape()[1], u.shape()[2], 0, 0};
  require_float_type(kScan, "delta", delta);
  require_shape(kScan, "delta", delta, u.shape(), "[batch, dim, L]");
  require_same_dtype(kScan, "delta", delta, "u", u);
  check_bc(kScan, B, C, s.batch, s.dim, s.seqlen, &s.dstate, &s.n_groups);
  require_float_type(kScan, "A", A);
  require_shape(kScan, "A", A, {s.dim, s.dstate}, "[dim, N]");
  check_optional_vector(kScan, "D", o.D, s.dim);
  check_optional_vector(kScan, "delta_bias", o.delta_bias, s.dim);
  if (o.z.defined()) {
    require_float_type(kScan, "z", o.z);
    require_shape(kScan, "z", o.z, u.shape(), "[batch, dim, L]");
    require_same_dtype(kScan, "z", o.z, "u", u);
  }
  return s;
}

SelectiveScanResult selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A,
                                   const Tensor& B, const Tensor& C,
                                   const SelectiveScanOptions& options) {
  const Device device = scan_device(u, delta, A, B, C, options);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::selective_scan(u, delta, A, B, C, options);
#endif
  require_host_device(kScan, device);
  const ScanShapes s = check_selective_scan_arguments(u, delta, A, B, C, options);
  SelectiveScanResult result;
  result.out = output_tensor(kScan, options.out, u.dtype(), u.shape());
  if (options.return_last_state) {
    result.last_state = Tensor::empty(DType::F32, {s.batch, s.dim, s.dstate});
  }
  const Tensor a = as_f32_contiguous(A);
  const Tensor b = s.n_groups == 0 ? as_f32_contiguous(B) : pack_time_varying(B);
  const Tensor c = s.n_groups == 0 ? as_f32_contiguous(C) : pack_time_varying(C);
  const Tensor d_skip = options.D.defined() ? as_f32_contiguous(options.D) : Tensor();
  const Tensor bias = options.delta_bias.defined() ? as_f32_contiguous(options.delta_bias) : Tensor();

  SelectiveScanParams p;
  p.batch = s.batch;
  p.dim = s.dim;
  p.seqlen = s.seqlen;
  p.dstate = s.dstate;
  p.n_groups = s.n_groups;
  p.dtype = u.dtype();
  p.u = u.data();
  read_strides(u, {&p.u_batch_stride, &p.u_dim_stride, &p.u_seq_stride});
  p.delta = delta.data();
  read_strides(delta, {&p.delta_batch_stride, &p.delta_dim_stride, &p.delta_seq_stride});
  if (options.z.defined()) {
    p.z = options.z.data();
    read_strides(options.z, {&p.z_batch_stride, &p.z_dim_stride, &p.z_seq_stride});
  }
  p.A = a.data_as<float>();
  p.B = b.data_as<float>();
  p.C = c.data_as<float>();
  p.D = d_skip.defined() ? d_skip.data_as<float>() : nullptr;
  p.delta_bias = bias.defined() ? bias.data_as<float>() : nullptr;
  p.delta_softplus = options.delta_softplus;
  p.out = result.out.data();
  p.last_state = result.last_state.defined() ? result.last_state.data_as<float>() : nullptr;
  if (u.numel() == 0) {
    if (p.last_state) std::fill_n(p.last_state, s.batch * s.dim * s.dstate, 0.0f);
    return result;
  }
  selective_scan_cpu(p);
  return result;
}

SelectiveScanResult selective_scan_reference(const Tensor& u, const Tensor& delta, const Tensor& A,
                                             const Tensor& B, const Tensor& C,
                                             const SelectiveScanOptions& o) {
  require_host_device("selective_scan_reference", scan_device(u, delta, A, B, C, o));
  const ScanShapes s = check_selective_scan_arguments(u, delta, A, B, C, o);
  SelectiveScanResult result;
  result.out = Tensor::empty(DType::F64, u.shape());
  result.last_state = Tensor::empty(DType::F64, {s.batch, s.dim, s.dstate});
  double* out = result.out.data_as<double>();
  double* last = result.last_state.data_as<double>();
  std::vector<double> h(s.dstate);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t d = 0; d < s.dim; ++d) {
      const int64_t g = s.n_groups > 1 ? d / (s.dim / s.n_groups) : 0;
      std::fill(h.begin(), h.end(), 0.0);
      for (int64_t t = 0; t < s.seqlen; ++t) {
        double dt = element_f64(delta, {b, d, t});
        if (o.delta_bias.defined()) dt += element_f64(o.delta_bias, {d});
        if (o.delta_softplus && dt <= 20.0) dt = std::log1p(std::exp(dt));
        const double uv = element_f64(u, {b, d, t});
        double y = 0.0;
        for (int64_t n = 0; n < s.dstate; ++n) {
          double bv, cv;
          if (s.n_groups == 0) {
            bv = element_f64(B, {d, n});
            cv = element_f64(C, {d, n});
          } else if (B.ndim() == 3) {
            bv = element_f64(B, {b, n, t});
            cv = element_f64(C, {b, n, t});
          } else {
            bv = element_f64(B, {b, g, n, t});
            cv = element_f64(C, {b, g, n, t});
          }
          h[n] = std::exp(dt * element_f64(A, {d, n})) * h[n] + dt * bv * uv;
          y += cv * h[n];
        }
        if (o.D.defined()) y += element_f64(o.D, {d}) * uv;
        if (o.z.defined()) {
          const double zv = element_f64(o.z, {b, d, t});
          y *= zv / (1.0 + std::exp(-zv));
        }
        out[(b * s.dim + d) * s.seqlen + t] = y;
      }
      std::copy(h.begin(), h.end(), last + (b * s.dim + d) * s.dstate);
    }
  }
  return result;
}

// ---- One decoding step ----

namespace {

// B or C of one step as F32 [batch, G, N].
Tensor pack_step(const Tensor& t) {
  const int64_t batch = t.shape()[0];
  const int64_t n = t.shape().back();
  const int64_t groups = t.ndim() == 3 ? t.shape()[1] : 1;
  return as_f32_contiguous(t).view({batch, groups, n});
}

Device update_device(const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A,
                     const Tensor& B, const Tensor& C, const SelectiveStateUpdateOptions& o) {
  return op_device(kUpdate, {{"state", &state},
                             {"x", &x},
                             {"dt", &dt},
                             {"A", &A},
                             {"B", &B},
                             {"C", &C},
                             {"D", &o.D},
                             {"z", &o.z},
                             {"dt_bias", &o.dt_bias},
                             {"out", &o.out}});
}

}  // namespace

UpdateShapes check_selective_state_update_arguments(const Tensor& state, const Tensor& x,
                                                    const Tensor& dt, const Tensor& A,
                                                    const Tensor& B, const Tensor& C,
                                                    const SelectiveStateUpdateOptions& o) {
  require_float_type(kUpdate, "state", state);
  require_ndim(kUpdate, "state", state, 3, "[batch, dim, N]");
  UpdateShapes s{state.shape()[0], state.shape()[1], state.shape()[2], 1};
  require_float_type(kUpdate, "x", x);
  require_shape(kUpdate, "x", x, {s.batch, s.dim}, "[batch, dim]");
  require_float_type(kUpdate, "dt", dt);
  require_shape(kUpdate, "dt", dt, {s.batch, s.dim}, "[batch, dim]");
  require_same_dtype(kUpdate, "dt", dt, "x", x);
  require_float_type(kUpdate, "A", A);
  require_shape(kUpdate, "A", A, {s.dim, s.dstate}, "[dim, N]");
  require_float_type(kUpdate, "B", B);
  require_float_type(kUpdate, "C", C);
  if (B.ndim() == 3) {
    s.n_groups = B.shape()[1];
    if (s.n_groups <= 0 || s.dim % s.n_groups != 0) {
      throw ArgumentError(std::string(kUpdate) + ": B's group count G = " + std::to_string(s.n_groups) +
                  " must divide dim = " + std::to_string(s.dim));
    }
    require_shape(kUpdate, "B", B, {s.batch, s.n_groups, s.dstate}, "[batch, G, N]");
  } else {
    require_shape(kUpdate, "B", B, {s.batch, s.dstate}, "[batch, N]");
  }
  require_shape(kUpdate, "C", C, B.shape(), "the shape of B");
  check_optional_vector(kUpdate, "D", o.D, s.dim);
  check_optional_vector(kUpdate, "dt_bias", o.dt_bias, s.dim);
  if (o.z.defined()) {
    require_float_type(kUpdate, "z", o.z);
    require_shape(kUpdate, "z", o.z, {s.batch, s.dim}, "[batch, dim]");
    require_same_dtype(kUpdate, "z", o.z, "x", x);
  }
  return s;
}

Tensor selective_state_update(const Tensor& state, const Tensor& x, const Tensor& dt,
                              const Tensor& A, const Tensor& B, const Tensor& C,
                              const SelectiveStateUpdateOptions& o) {
  const Device device = update_device(state, x, dt, A, B, C, o);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::selective_state_update(state, x, dt, A, B, C, o);
#endif
  require_host_device(kUpdate, device);
  const UpdateShapes s = check_selective_state_update_arguments(state, x, dt, A, B, C, o);
  Tensor y = output_tensor(kUpdate, o.out, x.dtype(), {s.batch, s.dim});
  const Tensor a = as_f32_contiguous(A);
  const Tensor b_step = pack_step(B);
  const Tensor c_step = pack_step(C);
  const Tensor d_skip = o.D.defined() ? as_f32_contiguous(o.D) : Tensor();
  const Tensor bias = o.dt_bias.defined() ? as_f32_contiguous(o.dt_bias) : Tensor();
  SelectiveStateUpdateParams p;
  fill_state_update_step(p, s, state, x, dt, o.z);
  p.A = a.data_as<float>();
  p.B = b_step.data_as<float>();
  p.C = c_step.data_as<float>();
  p.D = d_skip.defined() ? d_skip.data_as<float>() : nullptr;
  p.dt_bias = bias.defined() ? bias.data_as<float>() : nullptr;
  p.dt_softplus = o.dt_softplus;
  p.out = y.data();
  selective_state_update_cpu(p);
  return y;
}

SelectiveStateUpdateReference selective_state_update_reference(
    const Tensor& state, const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
    const Tensor& C, const SelectiveStateUpdateOptions& o) {
  require_host_device("selective_state_update_reference", update_device(state, x, dt, A, B, C, o));
  const UpdateShapes s = check_selective_state_update_arguments(state, x, dt, A, B, C, o);
  SelectiveStateUpdateReference r;
  r.y = Tensor::empty(DType::F64, {s.batch, s.dim});
  r.state = Tensor::empty(DType::F64, {s.batch, s.dim, s.dstate});
  double* y = r.y.data_as<double>();
  double* next = r.state.data_as<double>();
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t d = 0; d < s.dim; ++d) {
      const int64_t g = d / (s.dim / s.n_groups);
      const double xv = element_f64(x, {b, d});
      double dtv = element_f64(dt, {b, d});
      if (o.dt_bias.defined()) dtv += element_f64(o.dt_bias, {d});
      if (o.dt_softplus && dtv <= 20.0) dtv = std::log1p(std::exp(dtv));
      double acc = 0.0;
      for (int64_t n = 0; n < s.dstate; ++n) {
        const double bv = B.ndim() == 3 ? element_f64(B, {b, g, n}) : element_f64(B, {b, n});
        const double cv = C.ndim() == 3 ? element_f64(C, {b, g, n}) : element_f64(C, {b, n});
        const double hn = std::exp(dtv * element_f64(A, {d, n})) * element_f64(state, {b, d, n}) +
                          dtv * bv * xv;
        next[(b * s.dim + d) * s.dstate + n] = hn;
        acc += cv * hn;
      }
      if (o.D.defined()) acc += element_f64(o.D, {d}) * xv;
      if (o.z.defined()) {
        const double zv = element_f64(o.z, {b, d});
        acc *= zv / (1.0 + std::exp(-zv));
      }
      y[b * s.dim + d] = acc;
    }
  }
  return r;
}

void fill_state_update_step(SelectiveStateUpdateStep& step, const UpdateShapes& shapes,
                            const Tensor& state, const Tensor& x, const Tensor& dt,
                            const Tensor& z) {
  step.batch = shapes.batch;
  step.dim = shapes.dim;
  step.dstate = shapes.dstate;
  step.n_groups = shapes.n_groups;
  step.dtype = x.dtype();
  step.x = x.data();
  read_strides(x, {&step.x_batch_stride, &step.x_dim_stride});
  step.dt = dt.data();
  read_strides(dt, {&step.dt_batch_stride, &step.dt_dim_stride});
  if (z.defined()) {
    step.z = z.data();
    read_strides(z, {&step.z_batch_stride, &step.z_dim_stride});
  }
  step.state_dtype = state.dtype();
  step.state = state.data();
  read_strides(state, {&step.state_batch_stride, &step.state_dim_stride, &step.state_state_stride});
}

}  // namespace hfport
