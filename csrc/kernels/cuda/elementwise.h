// The element-wise steps the native models take between kernels, on the GPU: an embedding
// lookup, a residual add, zeroing padded rows, and silu(gate) * up over the two halves of a fused
// gate_up row. Host-callable; includes no CUDA header. The host versions live beside the models
// (models/model_inputs.cpp, models/llama.cpp), which call these for tensors on a CUDA device.
//
// All tensors are contiguous, row major. Arithmetic is f32; results round once to the dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport::cuda {

// out[i, :] = table[ids[i], :] for i < count; ids (device, I64) are already range checked. Rows
// are copied as bytes, so any dtype works.
struct EmbeddingParams {
  int64_t count = 0;
  int64_t row_bytes = 0;
  const void* table = nullptr;
  const int64_t* ids = nullptr;
  void* out = nullptr;
};
void embedding(const EmbeddingParams& params, void* stream);

// a[i] += b[i] for i < n (F32, F16 or BF16; a and b of one dtype; a may not partly overlap b).
struct AddParams {
  int64_t n = 0;
  DType dtype = DType::F32;
  void* a = nullptr;
  const void* b = nullptr;
};
void add_inplace(const AddParams& params, void* stream);

// x[r, :] = 0 where keep[r] == 0, for x [rows, width] (any dtype: rows are cleared as bytes).
struct MaskRowsParams {
  int64_t rows = 0;
  int64_t row_bytes = 0;
  void* x = nullptr;
  const uint8_t* keep = nullptr;  // [rows], device
};
void mask_rows(const MaskRowsParams& params, void* stream);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, width + i]: the LLaMA MLP on its fused gate_up
// output [rows, 2 width], read in place. out [rows, width] of the same dtype (F32, F16, BF16).
struct SwigluHalvesParams {
  int64_t rows = 0, width = 0;
  DType dtype = DType::F32;
  const void* gate_up = nullptr;
  void* out = nullptr;
};
void swiglu_halves(const SwigluHalvesParams& params, void* stream);

}  // namespace hfport::cuda
