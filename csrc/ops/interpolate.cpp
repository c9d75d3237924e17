// The entry point of interpolate_bicubic: checks, output, and the float64 reference; the CPU
// kernel is kernels/cpu/bicubic.cpp.
#include "ops/interpolate.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/bicubic_params.h"
#include "kernels/cpu/bicubic.h"
#include "ops/tensor_arguments.h"

namespace hfport {

namespace {

constexpr const char* kOp = "interpolate_bicubic";

void check_arguments(const char* op, const Tensor& x, int64_t out_h, int64_t out_w,
                     bool antialias, bool align_corners) {
  if (antialias && align_corners) {
    throw ArgumentError(std::string(op) + ": align_corners goes with antialias off (the "
                        "antialiased resize is implemented for align_corners=False only)");
  }
  require_defined(op, "x", x);
  require_ndim(op, "x", x, 4, "[batch, channels, height, width]");
  if (x.dtype() != DType::F32) {
    throw ArgumentError(std::string(op) + ": x must have dtype F32 (position tables are resized "
                        "in F32, as transformers does), got " + std::string(dtype_name(x.dtype())));
  }
  if (x.shape()[2] < 1 || x.shape()[3] < 1) {
    throw ArgumentError(std::string(op) + ": x must be at least 1x1 per plane, got " +
                        shape_to_string(x.shape()));
  }
  if (out_h < 1 || out_w < 1) {
    throw ArgumentError(std::string(op) + ": size must be >= 1 in both dimensions, got (" +
                        std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
  }
}

// One axis of the reference: for each output index, (input index, weight) pairs in float64.
using AxisWeights = std::vector<std::vector<std::pair<int64_t, double>>>;

double keys_kernel(double x, double a) {
  x = std::abs(x);
  if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

AxisWeights reference_axis(int64_t in, int64_t out, bool antialias, bool align_corners) {
  const double scale = !align_corners ? static_cast<double>(in) / static_cast<double>(out)
                       : out > 1      ? static_cast<double>(in - 1) / static_cast<double>(out - 1)
                                      : 0.0;
  AxisWeights axis(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    auto& taps = axis[static_cast<size_t>(i)];
    if (!antialias) {
      // Four taps around src, edge samples repeated (torch's upsample_bicubic2d).
      const double src = align_corners ? scale * static_cast<double>(i)
                                       : scale * (static_cast<double>(i) + 0.5) - 0.5;
      const double base = std::min(std::floor(src), static_cast<double>(in - 1));
      for (int64_t j = 0; j < 4; ++j) {
        const int64_t index = std::clamp<int64_t>(static_cast<int64_t>(base) - 1 + j, 0, in - 1);
        taps.emplace_back(index, keys_kernel(src - (base - 1.0 + static_cast<double>(j)), -0.75));
      }
      continue;
    }
    // Every sample within the (stretched when shrinking) support of the centre, PIL's A = -0.5,
    // weights normalised to sum to one.
    const double stretch = std::max(scale, 1.0);
    const double center = scale * (static_cast<double>(i) + 0.5);
    const double support = 2.0 * stretch;
    const int64_t first = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t last = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    double total = 0.0;
    for (int64_t k = first; k < last; ++k) {
      const double w = keys_kernel((static_cast<double>(k) - center + 0.5) / stretch, -0.5);
      taps.emplace_back(k, w);
      total += w;
    }
    if (total != 0.0) {
      for (auto& tap : taps) tap.second /= total;
    }
  }
  return axis;
}

}  // namespace

Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool antialias,
                           const Tensor& out, bool align_corners) {
  require_host_device(kOp, op_device(kOp, {{"x", &x}, {"out", &out}}));
  check_arguments(kOp, x, out_h, out_w, antialias, align_corners);
  const Shape& s = x.shape();
  Tensor result = output_tensor(kOp, out, DType::F32, {s[0], s[1], out_h, out_w});
  require_no_overlap(kOp, result, x, "x");
  BicubicParams p;
  p.batch = s[0];
  p.channels = s[1];
  p.in_h = s[2];
  p.in_w = s[3];
  p.out_h = out_h;
  p.out_w = out_w;
  p.antialias = antialias;
  p.align_corners = align_corners;
  p.x = x.data_as<float>();
  read_strides(x, {&p.x_batch_stride, &p.x_channel_stride, &p.x_row_stride, &p.x_col_stride});
  p.out = result.data_as<float>();
  if (result.numel() > 0) bicubic_cpu(p);
  return result;
}

Tensor interpolate_bicubic_reference(const Tensor& x, int64_t out_h, int64_t out_w,
                                     bool antialias, bool align_corners) {
  const char* op = "interpolate_bicubic_reference";
  require_host_device(op, op_device(op, {{"x", &x}}));
  check_arguments(op, x, out_h, out_w, antialias, align_corners);
  const Shape& s = x.shape();
  const auto& st = x.strides();
  const AxisWeights rows = reference_axis(s[2], out_h, antialias, align_corners);
  const AxisWeights cols = reference_axis(s[3], out_w, antialias, align_corners);
  Tensor result = Tensor::empty(DType::F64, {s[0], s[1], out_h, out_w});
  double* dst = result.data_as<double>();
  const float* src = x.data_as<float>();
  for (int64_t b = 0; b < s[0]; ++b) {
    for (int64_t c = 0; c < s[1]; ++c) {
      for (int64_t y = 0; y < out_h; ++y) {
        for (int64_t xo = 0; xo < out_w; ++xo) {
          double acc = 0.0;
          for (const auto& [iy, wy] : rows[static_cast<size_t>(y)]) {
            for (const auto& [ix, wx] : cols[static_cast<size_t>(xo)]) {
              acc += wy * wx * static_cast<double>(src[b * st[0] + c * st[1] + iy * st[2] +
                                                       ix * st[3]]);
            }
          }
          *dst++ = acc;
        }
      }
    }
  }
  return result;
}

}  // namespace hfport
