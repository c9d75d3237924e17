// The CPU kernels of selective_scan and selective_state_update; see selective_scan.h.
#include "kernels/cpu/selective_scan.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

// SIMD lanes: channels scanned together. 16 floats fill one AVX-512 register, two AVX2 ones.
constexpr int64_t kLanes = 16;
// Time steps whose dt, dt*u, u and y are staged in a [kChunk][kLanes] buffer (4 KB each).
constexpr int64_t kChunk = 64;

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

// One decoding step for every (batch, channel); EX: the element type of x, dt, z and out, ES: that
// of the state.
template <typename EX, typename ES>
void run_update(const SelectiveStateUpdateParams& p) {
  using TX = typename EX::Stored;
  auto* st = static_cast<typename ES::Stored*>(p.state);
  const TX* xp = static_cast<const TX*>(p.x);
  const TX* dtp = static_cast<const TX*>(p.dt);
  const TX* zp = static_cast<const TX*>(p.z);
  TX* yp = static_cast<TX*>(p.out);
  const int64_t per_group = p.dim / p.n_groups;
  parallel_for(p.batch * p.dim, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / p.dim;
      const int64_t d = i % p.dim;
      const int64_t g = d / per_group;
      const float xv = EX::load(xp[b * p.x_batch_stride + d * p.x_dim_stride]);
      float dtv = EX::load(dtp[b * p.dt_batch_stride + d * p.dt_dim_stride]);
      if (p.dt_bias) dtv += p.dt_bias[d];
      if (p.dt_softplus) dtv = softplus_f32(dtv);
      const float* bn = p.B + (b * p.n_groups + g) * p.dstate;
      const float* cn = p.C + (b * p.n_groups + g) * p.dstate;
      auto* h = st + b * p.state_batch_stride + d * p.state_dim_stride;
      const int64_t hs = p.state_state_stride;
      float acc = 0.0f;
      for (int64_t n = 0; n < p.dstate; ++n) {
        const float hn =
            std::exp(dtv * p.A[d * p.dstate + n]) * ES::load(h[n * hs]) + dtv * bn[n] * xv;
        h[n * hs] = ES::store(hn);
        acc += hn * cn[n];
      }
      if (p.D) acc += p.D[d] * xv;
      if (zp) acc *= silu_f32(EX::load(zp[b * p.z_batch_stride + d * p.z_dim_stride]));
      yp[b * p.dim + d] = EX::store(acc);
    }
  });
}

}  // namespace

void selective_scan_cpu(const SelectiveScanParams& p) {
  dispatch_float(p.dtype, [&](auto tag) {
    using E = decltype(tag);
    if (p.n_groups == 0) {
      run_scan<E, false>(p);
    } else {
      run_scan<E, true>(p);
    }
  });
}

void selective_state_update_cpu(const SelectiveStateUpdateParams& p) {
  dispatch_float(p.dtype, [&](auto x_tag) {
    dispatch_float(p.state_dtype, [&](auto state_tag) {
      run_update<decltype(x_tag), decltype(state_tag)>(p);
    });
  });
}

}  // namespace hfport
