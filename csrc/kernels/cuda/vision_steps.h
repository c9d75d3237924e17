// The element-wise steps of the ViT-family encoders (models/vision_transformer.h) on the GPU:
// assembling the token sequence, the layer-scaled residual add, the mean over a token range
// (pooling) and tanh (ViT's pooler). Host-callable; includes no CUDA header. Their CPU references
// are the host loops beside the model (models/vision_transformer.cpp, models/vision_blocks.cpp,
// models/model_inputs.cpp: tanh_inplace); each kernel computes the same float32 expression in the
// same order, so results differ from the host's only where CUDA's tanhf does.
//
// Every tensor is contiguous, row major, F32 on the device: these models compute in F32 on both
// devices (a BF16 checkpoint is widened once at load, as on the CPU), so one instantiation each.
#pragma once

#include <cstdint>

namespace hfport::cuda {

// out [batch, prefix + count, hidden]:
//   out[b, t, :] = prefix_rows[t, :]                                  for t < prefix
//   out[b, prefix + p, :] = x + positions[p, :] (x alone without positions)
//     where x = mask_token when mask[b, p] != 0, else patches[b, p, :]
// prefix_rows [prefix, hidden] (class token and registers with their positions already added on
// the host), positions [count, hidden] or null, mask U8 [batch, count] and mask_token [hidden]
// both null or both set. out must not overlap any input.
struct VisionTokensParams {
  int64_t batch = 0, prefix = 0, count = 0, hidden = 0;
  const float* prefix_rows = nullptr;
  const float* patches = nullptr;    // [batch, count, hidden]
  const float* positions = nullptr;  // optional
  const uint8_t* mask = nullptr;     // optional
  const float* mask_token = nullptr;
  float* out = nullptr;
};
void vision_tokens(const VisionTokensParams& params, void* stream);

// a[r, c] = a[r, c] * scale[c] + residual[r, c] (layer scale), the product rounded to F32 before
// the sum (no fused multiply-add), as transformers and the host loop round it. a [rows, cols];
// residual may not partly overlap a.
struct ScaleAddParams {
  int64_t rows = 0, cols = 0;
  float* a = nullptr;
  const float* scale = nullptr;  // [cols]
  const float* residual = nullptr;
};
void scale_add_inplace(const ScaleAddParams& params, void* stream);

// out[b * out_row_stride + c] = mean of x[b, p, c] over p in [skip, seq), summed in float64 in
// the order of p, divided in float64, rounded once. x [batch, seq, hidden]; out rows may be part
// of a wider row (out_row_stride >= hidden: the classifier's [first token, patch mean] input).
struct TokenMeanParams {
  int64_t batch = 0, seq = 0, hidden = 0, skip = 0;
  int64_t out_row_stride = 0;
  const float* x = nullptr;
  float* out = nullptr;
};
void token_mean(const TokenMeanParams& params, void* stream);

// x[i] = tanh(x[i]) for i < n.
void tanh_inplace(float* x, int64_t n, void* stream);

}  // namespace hfport::cuda
