#include "kernels/cpu/selective_scan.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/float_math.h"
#include "kernels/cpu/kernel_arguments.h"

#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/selective_scan.h"
#endif

namespace hfport {

namespace {

constexpr const char* kScan = "selective_scan";
constexpr const char* kUpdate = "selective_state_update";

// SIMD lanes: channels scanned together. 16 floats fill one AVX-512 register, two AVX2 ones.
constexpr int64_t kLanes = 16;
// Time steps whose dt, dt*u, u and y are staged in a [kChunk][kLanes] buffer (4 KB each).
constexpr int64_t kChunk = 64;

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
  const int64_t batch = t.shape()[0];
  const int64_t groups = grouped ? t.shape()[1] : 1;
  const int64_t n = t.shape()[grouped ? 2 : 1];
  const int64_t seqlen = t.shape()[grouped ? 3 : 2];
  const int64_t s_b = t.strides()[0];
  const int64_t s_g = grouped ? t.strides()[1] : 0;
  const int64_t s_n = t.strides()[grouped ? 2 : 1];
  const int64_t s_l = t.strides()[grouped ? 3 : 2];
  Tensor packed = Tensor::empty(DType::F32, {batch, groups, seqlen, n});
  float* dst = packed.data_as<float>();
  dispatch_float(t.dtype(), [&](auto tag) {
    using E = decltype(tag);
    const auto* src = t.data_as<typename E::Stored>();
    parallel_for(batch * groups, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bg = begin; bg < end; ++bg) {
        const auto* in = src + (bg / groups) * s_b + (bg % groups) * s_g;
        float* out = dst + bg * seqlen * n;
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t l = 0; l < seqlen; ++l) out[l * n + i] = E::load(in[i * s_n + l * s_l]);
        }
      }
    });
  });
  return packed;
}

// Scratch of one thread: the [N][kLanes] state, A, and (time invariant) B and C blocks, then the
// [kChunk][kLanes] staging buffers.
struct ScanScratch {
  std::vector<float> h, a, b, c, d_skip, dt, du, u, z, y;
  explicit ScanScratch(int64_t dstate)
      : h(dstate * kLanes), a(dstate * kLanes), b(dstate * kLanes), c(dstate * kLanes),
        d_skip(kLanes), dt(kChunk * kLanes), du(kChunk * kLanes), u(kChunk * kLanes),
        z(kChunk * kLanes), y(kChunk * kLanes) {}
};

// Before the recurrence, over a whole [kChunk][kLanes] buffer: dt = softplus(dt) when asked (dt
// already holds delta + delta_bias) and du = dt * u.
HFPORT_SIMD_CLONES
void finish_dt(float* __restrict dt, const float* __restrict u, float* __restrict du, int64_t count,
               bool softplus) {
  if (softplus) {
    for (int64_t i = 0; i < count; ++i) dt[i] = softplus_vectorizable(dt[i]);
  }
  for (int64_t i = 0; i < count; ++i) du[i] = dt[i] * u[i];
}

// After it: y = (y + D * u) * silu(z), D one value per lane ([kLanes]), z null when absent.
HFPORT_SIMD_CLONES
void finish_y(float* __restrict y, const float* __restrict u, const float* __restrict d_skip,
              const float* __restrict z, int64_t steps) {
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t w = 0; w < kLanes; ++w) y[t * kLanes + w] += d_skip[w] * u[t * kLanes + w];
  }
  if (z) {
    for (int64_t i = 0; i < steps * kLanes; ++i) y[i] *= silu_vectorizable(z[i]);
  }
}

// The recurrence over `steps` time steps of one block of kLanes channels: h [N][kLanes] is carried
// in and out, dt and du (dt * u) are [steps][kLanes], y [steps][kLanes] receives C . h. The loop
// over lanes is the vector loop; B and C are one row of N per step, shared by every lane.
HFPORT_SIMD_CLONES
void scan_steps_time_varying(float* __restrict h, const float* __restrict a,
                             const float* __restrict dt, const float* __restrict du,
                             const float* __restrict b_seq, const float* __restrict c_seq,
                             int64_t n_state, int64_t steps, float* __restrict y_out) {
  for (int64_t t = 0; t < steps; ++t) {
    const float* dt_t = dt + t * kLanes;
    const float* du_t = du + t * kLanes;
    const float* b_t = b_seq + t * n_state;
    const float* c_t = c_seq + t * n_state;
    float y[kLanes] = {};
    for (int64_t n = 0; n < n_state; ++n) {
      float* hn = h + n * kLanes;
      const float* an = a + n * kLanes;
      const float bn = b_t[n];
      const float cn = c_t[n];
      for (int64_t w = 0; w < kLanes; ++w) {
        hn[w] = exp_vectorizable(dt_t[w] * an[w]) * hn[w] + du_t[w] * bn;
        y[w] += hn[w] * cn;
      }
    }
    for (int64_t w = 0; w < kLanes; ++w) y_out[t * kLanes + w] = y[w];
  }
}

// The same with B and C per channel and time invariant: [N][kLanes] blocks like A.
HFPORT_SIMD_CLONES
void scan_steps_time_invariant(float* __restrict h, const float* __restrict a,
                               const float* __restrict dt, const float* __restrict du,
                               const float* __restrict b, const float* __restrict c,
                               int64_t n_state, int64_t steps, float* __restrict y_out) {
  for (int64_t t = 0; t < steps; ++t) {
    const float* dt_t = dt + t * kLanes;
    const float* du_t = du + t * kLanes;
    float y[kLanes] = {};
    for (int64_t n = 0; n < n_state; ++n) {
      float* hn = h + n * kLanes;
      const float* an = a + n * kLanes;
      const float* bn = b + n * kLanes;
      const float* cn = c + n * kLanes;
      for (int64_t w = 0; w < kLanes; ++w) {
        hn[w] = exp_vectorizable(dt_t[w] * an[w]) * hn[w] + du_t[w] * bn[w];
        y[w] += hn[w] * cn[w];
      }
    }
    for (int64_t w = 0; w < kLanes; ++w) y_out[t * kLanes + w] = y[w];
  }
}

// Scans channels [d0, d0 + lanes) of batch b, all reading B/C group g. Lanes past `lanes` run on
// zeros (dt = 0, u = 0: their state stays 0) and are never stored.
template <typename E, bool kTimeVarying>
void scan_block(const SelectiveScanParams& p, int64_t b, int64_t g, int64_t d0, int64_t lanes,
                ScanScratch& s) {
  using T = typename E::Stored;
  const int64_t n_state = p.dstate;
  float* h = s.h.data();
  float* a = s.a.data();
  std::fill(s.h.begin(), s.h.end(), 0.0f);
  for (int64_t w = 0; w < kLanes; ++w) s.d_skip[w] = p.D && w < lanes ? p.D[d0 + w] : 0.0f;
  for (int64_t n = 0; n < n_state; ++n) {
    for (int64_t w = 0; w < kLanes; ++w) {
      const bool live = w < lanes;
      a[n * kLanes + w] = live ? p.A[(d0 + w) * n_state + n] : 0.0f;
      if constexpr (!kTimeVarying) {
        s.b[n * kLanes + w] = live ? p.B[(d0 + w) * n_state + n] : 0.0f;
        s.c[n * kLanes + w] = live ? p.C[(d0 + w) * n_state + n] : 0.0f;
      }
    }
  }
  const float* b_seq = nullptr;
  const float* c_seq = nullptr;
  if constexpr (kTimeVarying) {
    b_seq = p.B + (b * p.n_groups + g) * p.seqlen * n_state;
    c_seq = p.C + (b * p.n_groups + g) * p.seqlen * n_state;
  }
  const T* u_in = static_cast<const T*>(p.u);
  const T* delta_in = static_cast<const T*>(p.delta);
  const T* z_in = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);

  for (int64_t t0 = 0; t0 < p.seqlen; t0 += kChunk) {
    const int64_t steps = std::min(kChunk, p.seqlen - t0);
    std::fill(s.dt.begin(), s.dt.end(), 0.0f);
    std::fill(s.u.begin(), s.u.end(), 0.0f);
    for (int64_t w = 0; w < lanes; ++w) {
      const int64_t d = d0 + w;
      const T* u_row = u_in + b * p.u_batch_stride + d * p.u_dim_stride + t0 * p.u_seq_stride;
      const T* delta_row =
          delta_in + b * p.delta_batch_stride + d * p.delta_dim_stride + t0 * p.delta_seq_stride;
      const float bias = p.delta_bias ? p.delta_bias[d] : 0.0f;
      for (int64_t t = 0; t < steps; ++t) {
        s.dt[t * kLanes + w] = E::load(delta_row[t * p.delta_seq_stride]) + bias;
        s.u[t * kLanes + w] = E::load(u_row[t * p.u_seq_stride]);
      }
      if (z_in) {
        const T* z_row = z_in + b * p.z_batch_stride + d * p.z_dim_stride + t0 * p.z_seq_stride;
        for (int64_t t = 0; t < steps; ++t) s.z[t * kLanes + w] = E::load(z_row[t * p.z_seq_stride]);
      }
    }
    finish_dt(s.dt.data(), s.u.data(), s.du.data(), kChunk * kLanes, p.delta_softplus);
    if constexpr (kTimeVarying) {
      scan_steps_time_varying(h, a, s.dt.data(), s.du.data(), b_seq + t0 * n_state,
                              c_seq + t0 * n_state, n_state, steps, s.y.data());
    } else {
      scan_steps_time_invariant(h, a, s.dt.data(), s.du.data(), s.b.data(), s.c.data(), n_state,
                                steps, s.y.data());
    }
    // Lanes past `lanes` may hold anything in z; their y is never stored.
    finish_y(s.y.data(), s.u.data(), s.d_skip.data(), z_in ? s.z.data() : nullptr, steps);
    for (int64_t w = 0; w < lanes; ++w) {
      T* out_row = out + (b * p.dim + d0 + w) * p.seqlen + t0;
      for (int64_t t = 0; t < steps; ++t) out_row[t] = E::store(s.y[t * kLanes + w]);
    }
  }
  if (p.last_state) {
    for (int64_t w = 0; w < lanes; ++w) {
      float* last = p.last_state + (b * p.dim + d0 + w) * n_state;
      for (int64_t n = 0; n < n_state; ++n) last[n] = h[n * kLanes + w];
    }
  }
}

// Work items: blocks of at most kLanes channels that never straddle a B/C group.
template <typename E, bool kTimeVarying>
void run_scan(const SelectiveScanParams& p) {
  const int64_t groups = kTimeVarying ? p.n_groups : 1;
  const int64_t per_group = p.dim / groups;
  const int64_t blocks_per_group = (per_group + kLanes - 1) / kLanes;
  const int64_t blocks = p.batch * groups * blocks_per_group;
  parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
    ScanScratch scratch(p.dstate);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / (groups * blocks_per_group);
      const int64_t g = (i / blocks_per_group) % groups;
      const int64_t d0 = g * per_group + (i % blocks_per_group) * kLanes;
      const int64_t lanes = std::min(kLanes, (g + 1) * per_group - d0);
      scan_block<E, kTimeVarying>(p, b, g, d0, lanes, scratch);
    }
  });
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
  dispatch_float(u.dtype(), [&](auto tag) {
    using E = decltype(tag);
    if (p.n_groups == 0) {
      run_scan<E, false>(p);
    } else {
      run_scan<E, true>(p);
    }
  });
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
  const float* a_p = a.data_as<float>();
  const float* b_p = b_step.data_as<float>();
  const float* c_p = c_step.data_as<float>();
  const float* d_p = d_skip.defined() ? d_skip.data_as<float>() : nullptr;
  const float* bias_p = bias.defined() ? bias.data_as<float>() : nullptr;
  const int64_t per_group = s.dim / s.n_groups;
  const auto& ss = state.strides();

  dispatch_float(x.dtype(), [&](auto x_tag) {
    using EX = decltype(x_tag);
    using TX = typename EX::Stored;
    dispatch_float(state.dtype(), [&](auto state_tag) {
      using ES = decltype(state_tag);
      auto* st = state.data_as<typename ES::Stored>();
      const TX* xp = x.data_as<TX>();
      const TX* dtp = dt.data_as<TX>();
      const TX* zp = o.z.defined() ? o.z.data_as<TX>() : nullptr;
      TX* yp = y.data_as<TX>();
      parallel_for(s.batch * s.dim, 256, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t b = i / s.dim;
          const int64_t d = i % s.dim;
          const int64_t g = d / per_group;
          const float xv = EX::load(xp[b * x.strides()[0] + d * x.strides()[1]]);
          float dtv = EX::load(dtp[b * dt.strides()[0] + d * dt.strides()[1]]);
          if (bias_p) dtv += bias_p[d];
          if (o.dt_softplus) dtv = softplus_f32(dtv);
          const float* bn = b_p + (b * s.n_groups + g) * s.dstate;
          const float* cn = c_p + (b * s.n_groups + g) * s.dstate;
          auto* h = st + b * ss[0] + d * ss[1];
          float acc = 0.0f;
          for (int64_t n = 0; n < s.dstate; ++n) {
            const float hn = std::exp(dtv * a_p[d * s.dstate + n]) * ES::load(h[n * ss[2]]) +
                             dtv * bn[n] * xv;
            h[n * ss[2]] = ES::store(hn);
            acc += hn * cn[n];
          }
          if (d_p) acc += d_p[d] * xv;
          if (zp) acc *= silu_f32(EX::load(zp[b * o.z.strides()[0] + d * o.z.strides()[1]]));
          yp[b * s.dim + d] = EX::store(acc);
        }
      });
    });
  });
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

}  // namespace hfport
