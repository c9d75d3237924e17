// The CPU kernel of rwkv_wkv; see rwkv_wkv.h.
#include "kernels/cpu/rwkv_wkv.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

// Channels per work item: four AVX-512 registers' worth, small enough to split a 768-channel
// batch row over threads.
constexpr int64_t kBlock = 64;

// exp(a - max(a, b)) and exp(b - max(a, b)) with one exponential: the larger argument's is
// exp(0) = 1 exactly, the other's exp(-|a - b|) (a - b and b - a are exact negations, so both
// equal what the two-exp form computes). NaN in a or b gives NaN in the second.
inline void exp_pair(float a, float b, float& ea, float& eb) {
  const float d = a - b;
  const float e = exp_vectorizable(-std::fabs(d));
  const bool a_larger = d >= 0.0f;
  ea = a_larger ? 1.0f : e;
  eb = a_larger ? e : 1.0f;
}

// One step over n channels, in the order transformers' rwkv_linear_attention_cpu computes it.
// w_neg is -exp(w); num, den and mx are the state, updated in place; y receives the output.
HFPORT_SIMD_CLONES
void wkv_step(const float* __restrict k, const float* __restrict v, const float* __restrict w_neg,
              const float* __restrict u, int64_t n, float* __restrict num,
              float* __restrict den, float* __restrict mx, float* __restrict y) {
  for (int64_t c = 0; c < n; ++c) {
    const float kc = k[c], vc = v[c], m = mx[c];
    const float bonus = kc + u[c];
    float e1, e2;
    exp_pair(m, bonus, e1, e2);  // exp(max - q), exp(k + u - q) for q = max(max, k + u)
    y[c] = (e1 * num[c] + e2 * vc) / (e1 * den[c] + e2);
    const float decayed = m + w_neg[c];
    float f1, f2;
    exp_pair(decayed, kc, f1, f2);  // for q' = max(max + w', k)
    num[c] = f1 * num[c] + f2 * vc;
    den[c] = f1 * den[c] + f2;
    mx[c] = decayed < kc ? kc : decayed;  // torch.maximum
  }
}

template <typename E>
void run_wkv(const RwkvWkvParams& p) {
  using T = typename E::Stored;
  const T* k_in = static_cast<const T*>(p.k);
  const T* v_in = static_cast<const T*>(p.v);
  T* out = static_cast<T*>(p.out);
  const int64_t blocks = (p.channels + kBlock - 1) / kBlock;
  parallel_for(p.batch * blocks, 1, [&](int64_t begin, int64_t end) {
    float w_neg[kBlock], kb[kBlock], vb[kBlock], yb[kBlock];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks;
      const int64_t c0 = (item % blocks) * kBlock;
      const int64_t n = std::min(kBlock, p.channels - c0);
      for (int64_t c = 0; c < n; ++c) w_neg[c] = -std::exp(p.w[c0 + c]);
      float* num = p.num + b * p.channels + c0;
      float* den = p.den + b * p.channels + c0;
      float* mx = p.max + b * p.channels + c0;
      for (int64_t t = 0; t < p.seqlen; ++t) {
        T* o = out + (b * p.seqlen + t) * p.channels + c0;
        if (p.mask && p.mask[b * p.seqlen + t] == 0) {
          for (int64_t c = 0; c < n; ++c) o[c] = E::store(0.0f);
          continue;
        }
        const T* kt = k_in + b * p.k_batch_stride + t * p.k_seq_stride + c0 * p.k_channel_stride;
        const T* vt = v_in + b * p.v_batch_stride + t * p.v_seq_stride + c0 * p.v_channel_stride;
        for (int64_t c = 0; c < n; ++c) {
          kb[c] = E::load(kt[c * p.k_channel_stride]);
          vb[c] = E::load(vt[c * p.v_channel_stride]);
        }
        wkv_step(kb, vb, w_neg, p.u + c0, n, num, den, mx, yb);
        for (int64_t c = 0; c < n; ++c) o[c] = E::store(yb[c]);
      }
    }
  });
}

}  // namespace

void rwkv_wkv_cpu(const RwkvWkvParams& p) {
  dispatch_float(p.dtype, [&](auto tag) { run_wkv<decltype(tag)>(p); });
}

}  // namespace hfport
