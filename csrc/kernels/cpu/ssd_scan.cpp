// The CPU kernels of ssd_scan and ssd_state_update; see ssd_scan.h.
#include "kernels/cpu/ssd_scan.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

// Floats in one register tile of the head dimension: one AVX-512 register, two AVX2 ones.
constexpr int64_t kTile = 16;

int64_t padded_to_tile(int64_t n) { return (n + kTile - 1) / kTile * kTile; }

// torch.clamp: NaN passes through (both comparisons are false).
float clamp_dt(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// cb[t][s] = C_t . B_s for s <= t; what lies above the diagonal is neither written nor read.
// c is the chunk's C, [q][N]; bt its B transposed, [N][q]; cb is [q][q].
HFPORT_SIMD_CLONES
void chunk_cb(const float* __restrict c, const float* __restrict bt, int64_t q, int64_t n,
              float* __restrict cb) {
  for (int64_t t = 0; t < q; ++t) {
    float* row = cb + t * q;
    for (int64_t s = 0; s <= t; ++s) row[s] = 0.0f;
    for (int64_t k = 0; k < n; ++k) {
      const float ck = c[t * n + k];
      const float* bk = bt + k * q;
      for (int64_t s = 0; s <= t; ++s) row[s] += ck * bk[s];
    }
  }
}

// The diagonal block: y[t] = sum_{s <= t} cb[t][s] exp(cs_t - cs_s) xdt[s] (y overwritten).
// xdt and y are [q][pp]; w is scratch of q floats.
HFPORT_SIMD_CLONES
void intra_chunk(const float* __restrict cb, const double* __restrict cs,
                 const float* __restrict xdt, int64_t q, int64_t pp, float* __restrict w,
                 float* __restrict y) {
  for (int64_t t = 0; t < q; ++t) {
    const double cs_t = cs[t];
    const float* cb_t = cb + t * q;
    for (int64_t s = 0; s <= t; ++s) {
      w[s] = cb_t[s] * exp_vectorizable(static_cast<float>(cs_t - cs[s]));
    }
    for (int64_t j0 = 0; j0 < pp; j0 += kTile) {
      float acc[kTile] = {};
      for (int64_t s = 0; s <= t; ++s) {
        const float ws = w[s];
        const float* xs = xdt + s * pp + j0;
        for (int64_t j = 0; j < kTile; ++j) acc[j] += ws * xs[j];
      }
      float* yt = y + t * pp + j0;
      for (int64_t j = 0; j < kTile; ++j) yt[j] = acc[j];
    }
  }
}

// The state that entered the chunk, read out at each step: y[t] += exp(cs_t) (st^T C_t), with the
// state st as [N][pp] and c the chunk's C, [q][N].
HFPORT_SIMD_CLONES
void add_state_output(const float* __restrict c, const double* __restrict cs,
                      const float* __restrict st, int64_t q, int64_t n, int64_t pp,
                      float* __restrict y) {
  for (int64_t t = 0; t < q; ++t) {
    const float decay = static_cast<float>(std::exp(cs[t]));
    for (int64_t j0 = 0; j0 < pp; j0 += kTile) {
      float acc[kTile] = {};
      for (int64_t k = 0; k < n; ++k) {
        const float ck = c[t * n + k];
        const float* sk = st + k * pp + j0;
        for (int64_t j = 0; j < kTile; ++j) acc[j] += ck * sk[j];
      }
      float* yt = y + t * pp + j0;
      for (int64_t j = 0; j < kTile; ++j) yt[j] += decay * acc[j];
    }
  }
}

// The state after the chunk: st = exp(cs_last) st + sum_s exp(cs_last - cs_s) B_s (outer) xdt_s,
// for st [N][pp], bt the chunk's B transposed [N][q], decay[s] = exp(cs_last - cs_s) and coef
// scratch of q floats.
HFPORT_SIMD_CLONES
void advance_state(const float* __restrict bt, const float* __restrict decay, float carry,
                   const float* __restrict xdt, int64_t q, int64_t n, int64_t pp,
                   float* __restrict coef, float* __restrict st) {
  for (int64_t k = 0; k < n; ++k) {
    const float* bk = bt + k * q;
    for (int64_t s = 0; s < q; ++s) coef[s] = bk[s] * decay[s];
    for (int64_t j0 = 0; j0 < pp; j0 += kTile) {
      float* sk = st + k * pp + j0;
      float acc[kTile];
      for (int64_t j = 0; j < kTile; ++j) acc[j] = carry * sk[j];
      for (int64_t s = 0; s < q; ++s) {
        const float cs = coef[s];
        const float* xs = xdt + s * pp + j0;
        for (int64_t j = 0; j < kTile; ++j) acc[j] += cs * xs[j];
      }
      for (int64_t j = 0; j < kTile; ++j) sk[j] = acc[j];
    }
  }
}

// Scratch of one thread: one chunk of one group (cb, bt) and of one head (the rest).
struct ChunkScratch {
  std::vector<float> cb, bt, x, xdt, y, w, decay, coef, dt;
  std::vector<double> cs;
  ChunkScratch(int64_t q, int64_t n, int64_t pp)
      : cb(q * q), bt(n * q), x(q * pp, 0.0f), xdt(q * pp), y(q * pp), w(q), decay(q), coef(q),
        dt(q), cs(q) {}
};

// Scans heads [h0, h0 + heads) of batch row b, all reading B/C group g; `states` holds their
// [N][pp] states, one after another.
template <typename E>
void scan_item(const SsdScanParams& p, int64_t b, int64_t g, int64_t h0, int64_t heads,
               ChunkScratch& s, std::vector<float>& states) {
  using T = typename E::Stored;
  const int64_t n = p.dstate, hd = p.head_dim, pp = padded_to_tile(hd);
  const int64_t chunk = std::min(p.chunk_size, p.seqlen);
  const T* x_in = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  T* out = static_cast<T*>(p.out);
  const float* b_seq = p.B + (b * p.n_groups + g) * p.seqlen * n;
  const float* c_seq = p.C + (b * p.n_groups + g) * p.seqlen * n;

  std::fill(states.begin(), states.end(), 0.0f);
  if (p.initial_states) {
    for (int64_t i = 0; i < heads; ++i) {
      const float* init = p.initial_states + ((b * p.heads + h0 + i) * hd) * n;
      float* st = states.data() + i * n * pp;
      for (int64_t j = 0; j < hd; ++j) {
        for (int64_t k = 0; k < n; ++k) st[k * pp + j] = init[j * n + k];
      }
    }
  }

  for (int64_t t0 = 0; t0 < p.seqlen; t0 += chunk) {
    const int64_t q = std::min(chunk, p.seqlen - t0);
    const float* b_chunk = b_seq + t0 * n;
    const float* c_chunk = c_seq + t0 * n;
    for (int64_t k = 0; k < n; ++k) {
      for (int64_t t = 0; t < q; ++t) s.bt[k * q + t] = b_chunk[t * n + k];
    }
    chunk_cb(c_chunk, s.bt.data(), q, n, s.cb.data());
    const bool state_entered = t0 > 0 || p.initial_states != nullptr;

    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = h0 + i;
      float* st = states.data() + i * n * pp;
      const float a = p.A[h];
      const float bias = p.dt_bias ? p.dt_bias[h] : 0.0f;
      double sum = 0.0;
      for (int64_t t = 0; t < q; ++t) {
        const T* dt_t = dt_in + b * p.dt_batch_stride + (t0 + t) * p.dt_seq_stride +
                        h * p.dt_head_stride;
        float v = E::load(*dt_t) + bias;
        if (p.dt_softplus) v = softplus_f32(v);
        v = clamp_dt(v, p.dt_min, p.dt_max);
        s.dt[t] = v;
        sum += static_cast<double>(v * a);  // transformers forms A * dt in float32, then sums
        s.cs[t] = sum;
        const T* x_t = x_in + b * p.x_batch_stride + (t0 + t) * p.x_seq_stride +
                       h * p.x_head_stride;
        float* xr = s.x.data() + t * pp;
        for (int64_t j = 0; j < hd; ++j) xr[j] = E::load(x_t[j * p.x_dim_stride]);
        float* xdt = s.xdt.data() + t * pp;
        for (int64_t j = 0; j < pp; ++j) xdt[j] = xr[j] * v;
      }
      intra_chunk(s.cb.data(), s.cs.data(), s.xdt.data(), q, pp, s.w.data(), s.y.data());
      if (state_entered) add_state_output(c_chunk, s.cs.data(), st, q, n, pp, s.y.data());
      const double last = s.cs[q - 1];
      for (int64_t t = 0; t < q; ++t) s.decay[t] = static_cast<float>(std::exp(last - s.cs[t]));
      advance_state(s.bt.data(), s.decay.data(), static_cast<float>(std::exp(last)),
                    s.xdt.data(), q, n, pp, s.coef.data(), st);
      const float d_skip = p.D ? p.D[h] : 0.0f;
      for (int64_t t = 0; t < q; ++t) {
        const float* yt = s.y.data() + t * pp;
        const float* xr = s.x.data() + t * pp;
        T* o = out + ((b * p.seqlen + t0 + t) * p.heads + h) * hd;
        for (int64_t j = 0; j < hd; ++j) o[j] = E::store(yt[j] + d_skip * xr[j]);
      }
    }
  }

  if (p.final_states) {
    for (int64_t i = 0; i < heads; ++i) {
      float* fin = p.final_states + ((b * p.heads + h0 + i) * hd) * n;
      const float* st = states.data() + i * n * pp;
      for (int64_t j = 0; j < hd; ++j) {
        for (int64_t k = 0; k < n; ++k) fin[j * n + k] = st[k * pp + j];
      }
    }
  }
}

template <typename E>
void run_scan(const SsdScanParams& p) {
  const int64_t per_group = p.heads / p.n_groups;
  const int64_t rows = p.batch * p.n_groups;
  // About two items per thread: enough to balance, few enough that C B^T is rarely recomputed.
  const int64_t wanted = 2 * static_cast<int64_t>(default_thread_count());
  const int64_t blocks_wanted = std::clamp<int64_t>((wanted + rows - 1) / rows, 1, per_group);
  const int64_t block = (per_group + blocks_wanted - 1) / blocks_wanted;
  const int64_t blocks = (per_group + block - 1) / block;
  const int64_t chunk = std::min(p.chunk_size, p.seqlen);
  const int64_t pp = padded_to_tile(p.head_dim);
  parallel_for(rows * blocks, 1, [&](int64_t begin, int64_t end) {
    ChunkScratch scratch(chunk, p.dstate, pp);
    std::vector<float> states(block * p.dstate * pp);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (p.n_groups * blocks);
      const int64_t g = (item / blocks) % p.n_groups;
      const int64_t h0 = g * per_group + (item % blocks) * block;
      const int64_t heads = std::min(block, (g + 1) * per_group - h0);
      scan_item<E>(p, b, g, h0, heads, scratch, states);
    }
  });
}

// One step for every (batch, head); EX: the element type of x, dt and out, ES: the state's.
template <typename EX, typename ES>
void run_update(const SsdStateUpdateParams& p) {
  using TX = typename EX::Stored;
  using TS = typename ES::Stored;
  const TX* x_in = static_cast<const TX*>(p.x);
  const TX* dt_in = static_cast<const TX*>(p.dt);
  TS* state = static_cast<TS*>(p.state);
  TX* out = static_cast<TX*>(p.out);
  const int64_t per_group = p.heads / p.n_groups;
  const int64_t n = p.dstate;
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.head_dim * n));
  parallel_for(p.batch * p.heads, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / p.heads;
      const int64_t h = i % p.heads;
      const int64_t g = h / per_group;
      float dt = EX::load(dt_in[b * p.dt_batch_stride + h * p.dt_head_stride]);
      if (p.dt_bias) dt += p.dt_bias[h];
      if (p.dt_softplus) dt = softplus_f32(dt);
      dt = clamp_dt(dt, p.dt_min, p.dt_max);
      const float decay = std::exp(dt * p.A[h]);
      const float* bn = p.B + (b * p.n_groups + g) * n;
      const float* cn = p.C + (b * p.n_groups + g) * n;
      const float d_skip = p.D ? p.D[h] : 0.0f;
      for (int64_t j = 0; j < p.head_dim; ++j) {
        const float xv =
            EX::load(x_in[b * p.x_batch_stride + h * p.x_head_stride + j * p.x_dim_stride]);
        TS* row = state + b * p.state_batch_stride + h * p.state_head_stride +
                  j * p.state_dim_stride;
        float acc = 0.0f;
        for (int64_t k = 0; k < n; ++k) {
          TS& cell = row[k * p.state_state_stride];
          const float next = ES::load(cell) * decay + (dt * bn[k]) * xv;
          cell = ES::store(next);
          acc += next * cn[k];
        }
        out[(b * p.heads + h) * p.head_dim + j] = EX::store(acc + d_skip * xv);
      }
    }
  });
}

}  // namespace

void ssd_scan_cpu(const SsdScanParams& p) {
  dispatch_float(p.dtype, [&](auto tag) { run_scan<decltype(tag)>(p); });
}

void ssd_state_update_cpu(const SsdStateUpdateParams& p) {
  dispatch_float(p.dtype, [&](auto x_tag) {
    dispatch_float(p.state_dtype, [&](auto state_tag) {
      run_update<decltype(x_tag), decltype(state_tag)>(p);
    });
  });
}

}  // namespace hfport
