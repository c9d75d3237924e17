// hfport::patch_embed for tensors on a CUDA device: a strided gather and a GEMM. See
// ops/cuda/patch_embed.h.
#include "ops/cuda/patch_embed.h"

#include <cstdint>

#include "ops/cuda/device_tensor.h"
#include "ops/linear.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kOp = "patch_embed";

}  // namespace

Tensor patch_embed(const Tensor& pixels, const Tensor& weight, const Tensor& bias,
                   PatchSize patch, const Tensor& out) {
  const PatchEmbedParams p = check_patch_embed_arguments(pixels, weight, bias, patch);
  const CurrentDevice current(pixels.device());
  const int64_t patches = p.grid_t * p.grid_h * p.grid_w;
  const int64_t patch_size = p.channels * p.patch_t * p.patch_h * p.patch_w;
  Tensor result =
      output_on(kOp, out, pixels.dtype(), {p.batch, patches, p.hidden}, pixels.device());
  require_no_overlap(kOp, result, pixels, "pixels");
  // The unfolded view: whole patches only (what lies past the last one is never addressed).
  const Shape& s = pixels.strides();
  Shape shape, strides;
  if (pixels.ndim() == 5) {
    shape = {p.batch, p.grid_t, p.grid_h, p.grid_w, p.channels, p.patch_t, p.patch_h, p.patch_w};
    strides = {s[0], p.patch_t * s[2], p.patch_h * s[3], p.patch_w * s[4], s[1], s[2], s[3], s[4]};
  } else {
    shape = {p.batch, p.grid_h, p.grid_w, p.channels, p.patch_h, p.patch_w};
    strides = {s[0], p.patch_h * s[2], p.patch_w * s[3], s[1], s[2], s[3]};
  }
  const Tensor view(pixels.storage(), pixels.byte_offset(), pixels.dtype(), shape, strides);
  // Gathered as F32 and multiplied by the F32 weight, as the host reads both; one rounding to the
  // pixels' dtype at the end.
  Tensor columns = Tensor::empty(DType::F32, shape, pixels.device());
  copy_into(kOp, view, columns);
  const Tensor w = contiguous_as(kOp, "weight", weight, DType::F32).view({p.hidden, patch_size});
  const Tensor x = columns.view({p.batch, patches, patch_size});
  if (pixels.dtype() == DType::F32) {
    linear(x, w, bias, result);
  } else {
    copy_into(kOp, linear(x, w, bias), result);
  }
  return result;
}

}  // namespace hfport::cuda
