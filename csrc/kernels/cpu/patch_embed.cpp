// The CPU kernel of patch_embed; see patch_embed.h and kernels/patch_embed_params.h.
#include "kernels/cpu/patch_embed.h"

#include <cstdint>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/float_element.h"
#include "kernels/cpu/linear.h"

namespace hfport {

namespace {

// One row of the unfolded matrix per patch, its columns in the weight's (c, k, i, j) order.
template <typename E>
void unfold(const PatchEmbedParams& p, float* columns) {
  using T = typename E::Stored;
  const T* pixels = static_cast<const T*>(p.pixels);
  const int64_t k = p.channels * p.patch_t * p.patch_h * p.patch_w;
  // Work items: (image, tubelet row, patch row).
  parallel_for(p.batch * p.grid_t * p.grid_h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (p.grid_t * p.grid_h);
      const int64_t gt = (r / p.grid_h) % p.grid_t;
      const int64_t gy = r % p.grid_h;
      for (int64_t gx = 0; gx < p.grid_w; ++gx) {
        float* row = columns + (r * p.grid_w + gx) * k;
        for (int64_t c = 0; c < p.channels; ++c) {
          for (int64_t t = 0; t < p.patch_t; ++t) {
            for (int64_t i = 0; i < p.patch_h; ++i) {
              const T* src = pixels + b * p.pixels_batch_stride + c * p.pixels_channel_stride +
                             (gt * p.patch_t + t) * p.pixels_time_stride +
                             (gy * p.patch_h + i) * p.pixels_row_stride +
                             gx * p.patch_w * p.pixels_col_stride;
              float* dst = row + ((c * p.patch_t + t) * p.patch_h + i) * p.patch_w;
              for (int64_t j = 0; j < p.patch_w; ++j) {
                dst[j] = E::load(src[j * p.pixels_col_stride]);
              }
            }
          }
        }
      }
    }
  });
}

template <typename E>
void round_into(const float* src, int64_t n, void* out) {
  using T = typename E::Stored;
  T* dst = static_cast<T*>(out);
  parallel_for(n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = E::store(src[i]);
  });
}

}  // namespace

void patch_embed_cpu(const PatchEmbedParams& p) {
  const int64_t rows = p.batch * p.grid_t * p.grid_h * p.grid_w;
  const int64_t k = p.channels * p.patch_t * p.patch_h * p.patch_w;
  if (rows == 0 || p.hidden == 0) return;
  std::vector<float> columns(static_cast<size_t>(rows * k));
  dispatch_float(p.dtype, [&](auto tag) { unfold<decltype(tag)>(p, columns.data()); });
  // F32 writes the GEMM's result straight into out; the half types go through an F32 buffer.
  std::vector<float> product;
  float* y = static_cast<float*>(p.out);
  if (p.dtype != DType::F32) {
    product.resize(static_cast<size_t>(rows * p.hidden));
    y = product.data();
  }
  LinearParams gemm;
  gemm.m = rows;
  gemm.n = p.hidden;
  gemm.k = k;
  gemm.x = columns.data();
  gemm.weight = p.weight;
  gemm.weight_ld = k;
  gemm.weight_is_out_in = true;
  gemm.bias = p.bias;
  gemm.out = y;
  linear_f32(gemm);
  if (p.dtype != DType::F32) {
    dispatch_float(p.dtype, [&](auto tag) { round_into<decltype(tag)>(y, rows * p.hidden, p.out); });
  }
}

}  // namespace hfport
