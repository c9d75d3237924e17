// The CPU kernel of interpolate_bicubic; see bicubic.h and kernels/bicubic_params.h.
#include "kernels/cpu/bicubic.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.h"

namespace hfport {

namespace {

// Keys' cubic convolution kernel, the two pieces as torch writes them: |x| <= 1 and 1 < |x| < 2.
float cubic_inner(float x, float a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
float cubic_outer(float x, float a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }

// torch's scale for an output size without a scale factor: in / out, in F32.
float axis_scale(int64_t in, int64_t out) {
  return static_cast<float>(in) / static_cast<float>(out);
}

// Antialias off: the four taps of one output index along one axis (upsample_bicubic2d's
// compute_indices_weights): clamped input indices and Keys' weights with A = -0.75.
struct CubicTaps {
  int64_t index[4];
  float weight[4];
};

std::vector<CubicTaps> cubic_taps(int64_t in, int64_t out, bool align_corners) {
  // align_corners: area_pixel_compute_scale's (in - 1) / (out - 1), an F32 division.
  const float scale = !align_corners ? axis_scale(in, out)
                      : out > 1      ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                                     : 0.0f;
  constexpr float a = -0.75f;
  std::vector<CubicTaps> taps(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    const float src = align_corners ? scale * static_cast<float>(i)
                                    : scale * (static_cast<float>(i) + 0.5f) - 0.5f;
    const int64_t base = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    const float t = std::min(std::max(src - static_cast<float>(base), 0.0f), 1.0f);
    CubicTaps& tap = taps[static_cast<size_t>(i)];
    tap.weight[0] = cubic_outer(t + 1.0f, a);
    tap.weight[1] = cubic_inner(t, a);
    const float u = 1.0f - t;
    tap.weight[2] = cubic_inner(u, a);
    tap.weight[3] = cubic_outer(u + 1.0f, a);
    for (int64_t j = 0; j < 4; ++j) tap.index[j] = std::clamp<int64_t>(base - 1 + j, 0, in - 1);
  }
  return taps;
}

void resize_cubic(const BicubicParams& p) {
  const std::vector<CubicTaps> rows = cubic_taps(p.in_h, p.out_h, p.align_corners);
  const std::vector<CubicTaps> cols = cubic_taps(p.in_w, p.out_w, p.align_corners);
  parallel_for(p.batch * p.channels * p.out_h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / p.out_h, y = r % p.out_h;
      const float* x = p.x + (plane / p.channels) * p.x_batch_stride +
                       (plane % p.channels) * p.x_channel_stride;
      const CubicTaps& ty = rows[static_cast<size_t>(y)];
      float* dst = p.out + r * p.out_w;
      for (int64_t ox = 0; ox < p.out_w; ++ox) {
        const CubicTaps& tx = cols[static_cast<size_t>(ox)];
        float acc = 0.0f;
        for (int64_t j = 0; j < 4; ++j) {
          const float* row = x + ty.index[j] * p.x_row_stride;
          float inner = row[tx.index[0] * p.x_col_stride] * tx.weight[0];
          for (int64_t k = 1; k < 4; ++k) inner += row[tx.index[k] * p.x_col_stride] * tx.weight[k];
          acc = j == 0 ? inner * ty.weight[0] : acc + inner * ty.weight[j];
        }
        dst[ox] = acc;
      }
    }
  });
}

// Antialias on: each output index reads `size` consecutive inputs from `first`, with normalised
// weights (_compute_indices_min_size_weights_aa). `stride` is the longest run, the weight rows'
// pitch.
struct AntialiasTaps {
  std::vector<int64_t> first, size;
  std::vector<float> weight;  // [out, stride]
  int64_t stride = 0;
};

// PIL's bicubic filter (A = -0.5), which torch's antialiased resize uses.
float antialias_filter(float x) {
  constexpr float a = -0.5f;
  x = std::abs(x);
  if (x < 1.0f) return cubic_inner(x, a);
  if (x < 2.0f) return cubic_outer(x, a);
  return 0.0f;
}

AntialiasTaps antialias_taps(int64_t in, int64_t out) {
  const float scale = axis_scale(in, out);
  // torch computes support, center and the filter's argument partly in double; so does this.
  const float support = scale >= 1.0f ? static_cast<float>(2.0 * scale) : 2.0f;
  const float invscale = scale >= 1.0f ? static_cast<float>(1.0 / scale) : 1.0f;
  AntialiasTaps taps;
  taps.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<size_t>(out));
  taps.size.resize(static_cast<size_t>(out));
  taps.weight.assign(static_cast<size_t>(out * taps.stride), 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const float center = static_cast<float>(scale * (static_cast<double>(i) + 0.5));
    // center -/+ support is an F32 sum; the 0.5 after it is added in double.
    const int64_t first = std::max(static_cast<int64_t>((center - support) + 0.5), int64_t{0});
    const int64_t last = std::min(static_cast<int64_t>((center + support) + 0.5), in);
    const int64_t size = std::clamp<int64_t>(last - first, 0, taps.stride);
    float* w = taps.weight.data() + i * taps.stride;
    float total = 0.0f;
    for (int64_t j = 0; j < size; ++j) {
      const float offset = static_cast<float>(j + first) - center;
      w[j] = antialias_filter(static_cast<float>((static_cast<double>(offset) + 0.5) * invscale));
      total += w[j];
    }
    if (total != 0.0f) {
      for (int64_t j = 0; j < size; ++j) w[j] /= total;
    }
    taps.first[static_cast<size_t>(i)] = first;
    taps.size[static_cast<size_t>(i)] = size;
  }
  return taps;
}

// One axis of the separable resize: `lines` lines of input samples `step` apart (line_start
// finds each) become lines of `out` samples `out_step` apart (from line_out).
template <typename Start, typename Out>
void antialias_pass(const AntialiasTaps& taps, int64_t lines, int64_t out, int64_t step,
                    int64_t out_step, Start line_start, Out line_out) {
  parallel_for(lines, 16, [&](int64_t begin, int64_t end) {
    for (int64_t l = begin; l < end; ++l) {
      const float* src = line_start(l);
      float* dst = line_out(l);
      for (int64_t o = 0; o < out; ++o) {
        const int64_t size = taps.size[static_cast<size_t>(o)];
        const float* w = taps.weight.data() + o * taps.stride;
        const float* s = src + taps.first[static_cast<size_t>(o)] * step;
        float acc = size > 0 ? s[0] * w[0] : 0.0f;
        for (int64_t j = 1; j < size; ++j) acc += s[j * step] * w[j];
        dst[o * out_step] = acc;
      }
    }
  });
}

void resize_antialias(const BicubicParams& p) {
  const int64_t planes = p.batch * p.channels;
  const auto plane_of = [&](int64_t plane) {
    return p.x + (plane / p.channels) * p.x_batch_stride + (plane % p.channels) * p.x_channel_stride;
  };
  if (p.in_h == p.out_h && p.in_w == p.out_w) {
    parallel_for(planes * p.out_h, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* src = plane_of(r / p.out_h) + (r % p.out_h) * p.x_row_stride;
        float* dst = p.out + r * p.out_w;
        for (int64_t x = 0; x < p.out_w; ++x) dst[x] = src[x * p.x_col_stride];
      }
    });
    return;
  }
  // The width pass reads x and writes [planes, in_h, out_w]: into out itself when the height stays,
  // else into a buffer the height pass reads.
  const float* src = p.x;
  int64_t row_stride = p.x_row_stride, col_stride = p.x_col_stride;
  std::vector<float> widened;
  const bool rows_change = p.in_h != p.out_h;
  if (p.in_w != p.out_w) {
    const AntialiasTaps cols = antialias_taps(p.in_w, p.out_w);
    float* dst = p.out;
    if (rows_change) {
      widened.resize(static_cast<size_t>(planes * p.in_h * p.out_w));
      dst = widened.data();
    }
    antialias_pass(
        cols, planes * p.in_h, p.out_w, p.x_col_stride, 1,
        [&](int64_t l) { return plane_of(l / p.in_h) + (l % p.in_h) * p.x_row_stride; },
        [&](int64_t l) { return dst + l * p.out_w; });
    if (!rows_change) return;
    src = widened.data();
    row_stride = p.out_w;
    col_stride = 1;
  }
  const AntialiasTaps rows = antialias_taps(p.in_h, p.out_h);
  const bool from_buffer = src != p.x;
  // Lines along the height: one per (plane, column).
  antialias_pass(
      rows, planes * p.out_w, p.out_h, row_stride, p.out_w,
      [&](int64_t l) {
        const int64_t plane = l / p.out_w, column = l % p.out_w;
        const float* base = from_buffer ? src + plane * p.in_h * p.out_w : plane_of(plane);
        return base + column * col_stride;
      },
      [&](int64_t l) { return p.out + (l / p.out_w) * p.out_h * p.out_w + (l % p.out_w); });
}

}  // namespace

void bicubic_cpu(const BicubicParams& p) {
  if (p.antialias) {
    resize_antialias(p);
  } else {
    resize_cubic(p);
  }
}

}  // namespace hfport
