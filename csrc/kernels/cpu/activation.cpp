// The CPU kernel of the elementwise activations; see activation.h and kernels/activation_params.h.
#include "kernels/cpu/activation.h"

#include <cstddef>
#include <cstdint>

#include "core/parallel.h"
#include "core/storage.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/float_math.h"

namespace hfport {

namespace {

constexpr int64_t kElementGrain = 1 << 15;

// out[i] = f(x[i], up[i]) (f(x[i], 0) without `up`), in F32, rounded once to the storage type.
template <typename E, typename Fn>
void elementwise(const ActivationParams& p, Fn&& f) {
  using T = typename E::Stored;
  const T* in = static_cast<const T*>(p.x);
  const T* in2 = static_cast<const T*>(p.up);
  T* dst = static_cast<T*>(p.out);
  parallel_for(p.n, kElementGrain, [&](int64_t begin, int64_t end) {
    prefault_for_write(dst + begin, static_cast<size_t>(end - begin) * sizeof(T));
    if (in2) {
      for (int64_t i = begin; i < end; ++i) dst[i] = E::store(f(E::load(in[i]), E::load(in2[i])));
    } else {
      for (int64_t i = begin; i < end; ++i) dst[i] = E::store(f(E::load(in[i]), 0.0f));
    }
  });
}

// The exact GELU over F32 rows, compiled for each SIMD level (float_math.h): the hot activation of
// the ViT-family and BERT MLPs. out may be x (linear applies it in place).
HFPORT_SIMD_CLONES
void gelu_erf_row(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_erf_vectorizable(x[i]);
}

void gelu_erf_f32_rows(const ActivationParams& p) {
  const float* in = static_cast<const float*>(p.x);
  float* dst = static_cast<float*>(p.out);
  parallel_for(p.n, kElementGrain, [&](int64_t begin, int64_t end) {
    prefault_for_write(dst + begin, static_cast<size_t>(end - begin) * sizeof(float));
    gelu_erf_row(in + begin, dst + begin, end - begin);
  });
}

}  // namespace

void activation_cpu(const ActivationParams& p) {
  if (p.activation == Activation::GeluErf && p.dtype == DType::F32) {
    gelu_erf_f32_rows(p);
    return;
  }
  dispatch_float(p.dtype, [&](auto tag) {
    using E = decltype(tag);
    switch (p.activation) {
      case Activation::GeluErf:
        elementwise<E>(p, [](float v, float) { return gelu_erf_vectorizable(v); });
        break;
      case Activation::GeluTanh:
        elementwise<E>(p, [](float v, float) { return gelu_tanh_f32(v); });
        break;
      case Activation::Silu:
        elementwise<E>(p, [](float v, float) { return silu_vectorizable(v); });
        break;
      case Activation::Swiglu:
        elementwise<E>(p, [](float g, float u) { return silu_vectorizable(g) * u; });
        break;
    }
  });
}

}  // namespace hfport
