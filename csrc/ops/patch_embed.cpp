// The entry point of patch_embed: checks, operands and output, device dispatch, and the float64
// reference; the CPU kernel is kernels/cpu/patch_embed.cpp, the CUDA side ops/cuda/patch_embed.h.
#include "ops/patch_embed.h"

#include <string>

#include "core/error.h"
#include "kernels/cpu/patch_embed.h"
#include "ops/tensor_arguments.h"
#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/patch_embed.h"
#endif

namespace hfport {

namespace {

constexpr const char* kOp = "patch_embed";

std::string patch_text(PatchSize patch) {
  return (patch.t == 1 ? "" : std::to_string(patch.t) + "x") + std::to_string(patch.h) + "x" +
         std::to_string(patch.w);
}

Device patch_embed_device(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                          const Tensor& out) {
  return op_device(kOp, {{"pixels", &pixels}, {"weight", &weight}, {"bias", &bias}, {"out", &out}});
}

}  // namespace

PatchEmbedParams check_patch_embed_arguments(const Tensor& pixels, const Tensor& weight,
                                             const Tensor& bias, PatchSize patch) {
  if (patch.t < 1 || patch.h < 1 || patch.w < 1) {
    throw ArgumentError(std::string(kOp) + ": patch must be >= 1 in every dimension, got " +
                        patch_text(patch));
  }
  require_float_type(kOp, "pixels", pixels);
  if (pixels.ndim() != 4 && pixels.ndim() != 5) {
    throw ArgumentError(std::string(kOp) + ": pixels must be [batch, channels, height, width] or "
                        "[batch, channels, frames, height, width], got " +
                        shape_to_string(pixels.shape()));
  }
  const bool video = pixels.ndim() == 5;
  if (!video && patch.t != 1) {
    throw ArgumentError(std::string(kOp) + ": a patch of " + std::to_string(patch.t) +
                        " frames needs pixels [batch, channels, frames, height, width], got " +
                        shape_to_string(pixels.shape()));
  }
  const std::string weight_names =
      video ? "[hidden, channels, patch_t, patch_h, patch_w]" : "[hidden, channels, patch_h, patch_w]";
  require_float_type(kOp, "weight", weight);
  require_ndim(kOp, "weight", weight, pixels.ndim(), weight_names);
  PatchEmbedParams p;
  p.hidden = weight.shape()[0];
  p.channels = weight.shape()[1];
  p.patch_t = patch.t;
  p.patch_h = patch.h;
  p.patch_w = patch.w;
  require_shape(kOp, "weight", weight,
                video ? Shape{p.hidden, p.channels, patch.t, patch.h, patch.w}
                      : Shape{p.hidden, p.channels, patch.h, patch.w},
                weight_names);
  const std::string pixel_names =
      video ? "[batch, channels, frames, height, width]" : "[batch, channels, height, width]";
  if (pixels.shape()[1] != p.channels) {
    throw ArgumentError(std::string(kOp) + ": pixels must be " + pixel_names + " with the "
                        "weight's " + std::to_string(p.channels) + " channels, got " +
                        shape_to_string(pixels.shape()));
  }
  const Shape& s = pixels.shape();
  p.batch = s[0];
  p.frames = video ? s[2] : 1;
  p.height = s[s.size() - 2];
  p.width = s[s.size() - 1];
  if (bias.defined()) {
    require_float_type(kOp, "bias", bias);
    require_shape(kOp, "bias", bias, {p.hidden}, "[hidden]");
  }
  if (p.frames < patch.t || p.height < patch.h || p.width < patch.w) {
    throw ArgumentError(std::string(kOp) + ": pixels must hold at least one patch (" +
                        patch_text(patch) + (video ? ", frames x height x width" : "") +
                        "), got " + shape_to_string(s));
  }
  p.grid_t = p.frames / patch.t;
  p.grid_h = p.height / patch.h;
  p.grid_w = p.width / patch.w;
  p.dtype = pixels.dtype();
  return p;
}

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                   PatchSize patch, const Tensor& out) {
  const Device device = patch_embed_device(pixels, weight, bias, out);
#ifdef HFPORT_WITH_CUDA
  if (device.type == DeviceType::CUDA) return cuda::patch_embed(pixels, weight, bias, patch, out);
#endif
  require_host_device(kOp, device);
  PatchEmbedParams p = check_patch_embed_arguments(pixels, weight, bias, patch);
  Tensor result = output_tensor(kOp, out, pixels.dtype(),
                                {p.batch, p.grid_t * p.grid_h * p.grid_w, p.hidden});
  require_no_overlap(kOp, result, pixels, "pixels");
  const Tensor w = as_f32_contiguous(weight);
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  p.pixels = pixels.data();
  if (pixels.ndim() == 5) {
    read_strides(pixels, {&p.pixels_batch_stride, &p.pixels_channel_stride, &p.pixels_time_stride,
                          &p.pixels_row_stride, &p.pixels_col_stride});
  } else {
    read_strides(pixels, {&p.pixels_batch_stride, &p.pixels_channel_stride, &p.pixels_row_stride,
                          &p.pixels_col_stride});
  }
  p.weight = w.data_as<float>();
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.out = result.data();
  patch_embed_cpu(p);
  return result;
}

Tensor patch_embed_reference(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                             PatchSize patch) {
  require_host_device("patch_embed_reference", patch_embed_device(pixels, weight, bias, Tensor()));
  const PatchEmbedParams p = check_patch_embed_arguments(pixels, weight, bias, patch);
  const int64_t patches = p.grid_t * p.grid_h * p.grid_w;
  Tensor result = Tensor::empty(DType::F64, {p.batch, patches, p.hidden});
  double* out = result.data_as<double>();
  // Element strides as [batch, channels, frames, height, width], a 2-D call with one frame.
  const bool video = pixels.ndim() == 5;
  const auto& xs = pixels.strides();
  const auto& ws = weight.strides();
  const int64_t x_time = video ? xs[2] : 0, w_time = video ? ws[2] : 0;
  const int64_t x_row = xs[xs.size() - 2], x_col = xs[xs.size() - 1];
  const int64_t w_row = ws[ws.size() - 2], w_col = ws[ws.size() - 1];
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t n = 0; n < patches; ++n) {
      const int64_t gt = n / (p.grid_h * p.grid_w), gy = (n / p.grid_w) % p.grid_h,
                    gx = n % p.grid_w;
      for (int64_t o = 0; o < p.hidden; ++o) {
        double acc =
            bias.defined() ? load_as_f64(bias.data(), bias.dtype(), o * bias.strides()[0]) : 0.0;
        for (int64_t c = 0; c < p.channels; ++c) {
          for (int64_t k = 0; k < p.patch_t; ++k) {
            for (int64_t i = 0; i < p.patch_h; ++i) {
              for (int64_t j = 0; j < p.patch_w; ++j) {
                const int64_t t = gt * p.patch_t + k, y = gy * p.patch_h + i,
                              x = gx * p.patch_w + j;
                acc += load_as_f64(weight.data(), weight.dtype(),
                                   o * ws[0] + c * ws[1] + k * w_time + i * w_row + j * w_col) *
                       load_as_f64(pixels.data(), pixels.dtype(),
                                   b * xs[0] + c * xs[1] + t * x_time + y * x_row + x * x_col);
              }
            }
          }
        }
        out[(b * patches + n) * p.hidden + o] = acc;
      }
    }
  }
  return result;
}

}  // namespace hfport
