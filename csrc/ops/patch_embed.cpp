// The entry point of patch_embed: checks, operands and output, and the float64 reference; the CPU
// kernel is kernels/cpu/patch_embed.cpp.
#include "ops/patch_embed.h"

#include <string>

#include "core/error.h"
#include "kernels/cpu/patch_embed.h"
#include "ops/tensor_arguments.h"

namespace hfport {

namespace {

constexpr const char* kOp = "patch_embed";

std::string patch_text(PatchSize patch) {
  return std::to_string(patch.h) + "x" + std::to_string(patch.w);
}

Device patch_embed_device(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                          const Tensor& out) {
  return op_device(kOp, {{"pixels", &pixels}, {"weight", &weight}, {"bias", &bias}, {"out", &out}});
}

}  // namespace

PatchEmbedParams check_patch_embed_arguments(const Tensor& pixels, const Tensor& weight,
                                             const Tensor& bias, PatchSize patch) {
  if (patch.h < 1 || patch.w < 1) {
    throw ArgumentError(std::string(kOp) + ": patch must be >= 1 in both dimensions, got " +
                        patch_text(patch));
  }
  require_float_type(kOp, "pixels", pixels);
  require_ndim(kOp, "pixels", pixels, 4, "[batch, channels, height, width]");
  require_float_type(kOp, "weight", weight);
  require_ndim(kOp, "weight", weight, 4, "[hidden, channels, patch_h, patch_w]");
  PatchEmbedParams p;
  p.hidden = weight.shape()[0];
  p.channels = weight.shape()[1];
  p.patch_h = patch.h;
  p.patch_w = patch.w;
  require_shape(kOp, "weight", weight, {p.hidden, p.channels, patch.h, patch.w},
                "[hidden, channels, patch_h, patch_w]");
  if (pixels.shape()[1] != p.channels) {
    throw ArgumentError(std::string(kOp) + ": pixels must be [batch, channels, height, width] "
                        "with the weight's " + std::to_string(p.channels) + " channels, got " +
                        shape_to_string(pixels.shape()));
  }
  p.batch = pixels.shape()[0];
  p.height = pixels.shape()[2];
  p.width = pixels.shape()[3];
  if (bias.defined()) {
    require_float_type(kOp, "bias", bias);
    require_shape(kOp, "bias", bias, {p.hidden}, "[hidden]");
  }
  if (p.height < patch.h || p.width < patch.w) {
    throw ArgumentError(std::string(kOp) + ": pixels must be at least one patch (" +
                        patch_text(patch) + ") high and wide, got " +
                        shape_to_string(pixels.shape()));
  }
  p.grid_h = p.height / patch.h;
  p.grid_w = p.width / patch.w;
  p.dtype = pixels.dtype();
  return p;
}

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                   PatchSize patch, const Tensor& out) {
  require_host_device(kOp, patch_embed_device(pixels, weight, bias, out));
  PatchEmbedParams p = check_patch_embed_arguments(pixels, weight, bias, patch);
  Tensor result = output_tensor(kOp, out, pixels.dtype(), {p.batch, p.grid_h * p.grid_w, p.hidden});
  require_no_overlap(kOp, result, pixels, "pixels");
  const Tensor w = as_f32_contiguous(weight);
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  p.pixels = pixels.data();
  read_strides(pixels, {&p.pixels_batch_stride, &p.pixels_channel_stride, &p.pixels_row_stride,
                        &p.pixels_col_stride});
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
  Tensor result = Tensor::empty(DType::F64, {p.batch, p.grid_h * p.grid_w, p.hidden});
  double* out = result.data_as<double>();
  const auto& xs = pixels.strides();
  const auto& ws = weight.strides();
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t gy = 0; gy < p.grid_h; ++gy) {
      for (int64_t gx = 0; gx < p.grid_w; ++gx) {
        for (int64_t o = 0; o < p.hidden; ++o) {
          double acc =
              bias.defined() ? load_as_f64(bias.data(), bias.dtype(), o * bias.strides()[0]) : 0.0;
          for (int64_t c = 0; c < p.channels; ++c) {
            for (int64_t i = 0; i < p.patch_h; ++i) {
              for (int64_t j = 0; j < p.patch_w; ++j) {
                const int64_t y = gy * p.patch_h + i, x = gx * p.patch_w + j;
                acc += load_as_f64(weight.data(), weight.dtype(),
                                   o * ws[0] + c * ws[1] + i * ws[2] + j * ws[3]) *
                       load_as_f64(pixels.data(), pixels.dtype(),
                                   b * xs[0] + c * xs[1] + y * xs[2] + x * xs[3]);
              }
            }
          }
          out[((b * p.grid_h + gy) * p.grid_w + gx) * p.hidden + o] = acc;
        }
      }
    }
  }
  return result;
}

}  // namespace hfport
