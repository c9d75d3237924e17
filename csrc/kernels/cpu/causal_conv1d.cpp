// The CPU kernels of causal_conv1d and its update; see causal_conv1d.h and
// kernels/causal_conv1d_params.h.
#include "kernels/cpu/causal_conv1d.h"

#include <cstdint>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

// out[t] = bias + sum_k w[k] * padded[t + k] over `count` outputs, then the activation.
HFPORT_SIMD_CLONES
void conv_row(const float* __restrict padded, const float* __restrict w, int64_t width, float bias,
              bool silu, int64_t count, float* __restrict out) {
  for (int64_t t = 0; t < count; ++t) out[t] = bias;
  for (int64_t k = 0; k < width; ++k) {
    const float wk = w[k];
    for (int64_t t = 0; t < count; ++t) out[t] += wk * padded[t + k];
  }
  if (silu) {
    for (int64_t t = 0; t < count; ++t) out[t] = silu_vectorizable(out[t]);
  }
}

template <typename E>
void run_conv(const CausalConv1dParams& p) {
  using T = typename E::Stored;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  parallel_for(p.batch * p.dim, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(p.seqlen + p.width - 1, 0.0f);
    std::vector<float> row(p.seqlen);
    for (int64_t c = begin; c < end; ++c) {
      const int64_t b = c / p.dim;
      const int64_t d = c % p.dim;
      const T* in = x + b * p.x_batch_stride + d * p.x_dim_stride;
      float* body = padded.data() + p.width - 1;  // the first width - 1 stay zero
      for (int64_t t = 0; t < p.seqlen; ++t) body[t] = E::load(in[t * p.x_seq_stride]);
      conv_row(padded.data(), p.weight + d * p.width, p.width, p.bias ? p.bias[d] : 0.0f, p.silu,
               p.seqlen, row.data());
      T* dst = out + c * p.seqlen;
      for (int64_t t = 0; t < p.seqlen; ++t) dst[t] = E::store(row[t]);
    }
  });
}

// EX: the element type of x and out; ES: that of the state.
template <typename EX, typename ES>
void run_update(const CausalConv1dUpdateParams& p) {
  using TX = typename EX::Stored;
  auto* state = static_cast<typename ES::Stored*>(p.conv_state);
  const TX* xp = static_cast<const TX*>(p.x);
  TX* out = static_cast<TX*>(p.out);
  const int64_t width = p.width, state_len = p.state_len, seqlen = p.seqlen;
  const int64_t ss_seq = p.state_seq_stride;
  parallel_for(p.batch * p.dim, 256, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t b = c / p.dim;
      const int64_t d = c % p.dim;
      auto* st = state + b * p.state_batch_stride + d * p.state_dim_stride;
      const float* wd = p.weight + d * width;
      for (int64_t t = 0; t < seqlen; ++t) {
        const float xv =
            EX::load(xp[b * p.x_batch_stride + d * p.x_dim_stride + t * p.x_seq_stride]);
        // The window is the last width - 1 state columns, then x_t.
        float acc = p.bias ? p.bias[d] : 0.0f;
        for (int64_t k = 0; k < width - 1; ++k) {
          acc += wd[k] * ES::load(st[(state_len - (width - 1) + k) * ss_seq]);
        }
        acc += wd[width - 1] * xv;
        if (p.silu) acc = silu_f32(acc);
        out[c * seqlen + t] = EX::store(acc);
        if (state_len > 0) {
          for (int64_t j = 0; j + 1 < state_len; ++j) st[j * ss_seq] = st[(j + 1) * ss_seq];
          st[(state_len - 1) * ss_seq] = ES::store(xv);
        }
      }
    }
  });
}

}  // namespace

void causal_conv1d_cpu(const CausalConv1dParams& p) {
  dispatch_float(p.dtype, [&](auto tag) { run_conv<decltype(tag)>(p); });
}

void causal_conv1d_update_cpu(const CausalConv1dUpdateParams& p) {
  dispatch_float(p.dtype, [&](auto x_tag) {
    dispatch_float(p.state_dtype, [&](auto state_tag) {
      run_update<decltype(x_tag), decltype(state_tag)>(p);
    });
  });
}

}  // namespace hfport
