// Rotary position embeddings on the GPU: the rotation of kernels/cpu/rope.h, on device pointers.
// Host-callable; includes no CUDA header.
//
// One call rotates one tensor (q, or k: they may have different head counts, so a caller makes one
// call for each, like rope_cpu). x is [batch, heads, seq, head_dim] in any layout the three element
// strides (batch, head, seq) describe, with a unit stride over head_dim: bhsd and bshd are both
// just strides. The first rotary_dim features of each head row rotate (half-split: x[i], x[i + R/2];
// interleaved: x[2i], x[2i + 1]; pair i uses frequency i), the rest are copied through.
// cos and sin hold frequency i at element i of row (b, s), at b * table_stride[0] +
// s * table_stride[1] (table_stride[0] = 0 broadcasts one table over the batch).
// Arithmetic is f32; each result is rounded once to x's dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {
// kernels/cpu/rope.h, declared here only: that header brings in nlohmann/json, which the .cu files
// that include this one have no use for.
class Tensor;
struct RopeOptions;
struct RopeResult;
}  // namespace hfport

namespace hfport::cuda {

struct RopeParams {
  int64_t batch = 0, heads = 0, seq = 0, head_dim = 0, rotary_dim = 0;
  bool interleaved = false;
  DType dtype = DType::F32;      // of x and out: F32, F16 or BF16
  const void* x = nullptr;       // device pointer
  int64_t x_stride[3] = {};      // batch, head, seq (elements)
  void* out = nullptr;           // device pointer, x's dtype; may be x itself (in place)
  int64_t out_stride[3] = {};
  DType table_dtype = DType::F32;  // of cos and sin: F32, F16 or BF16
  const void* cos = nullptr;
  const void* sin = nullptr;
  int64_t table_stride[2] = {};  // batch (0 when broadcast), seq
};

// Launches on `stream` (a cudaStream_t; nullptr is the default stream) and checks the launch.
// Throws ArgumentError for a dtype other than F32/F16/BF16 or an odd or too large rotary_dim.
// out may equal x (each element is read before it is written, by the thread that writes it); any
// other overlap is undefined.
void rope(const RopeParams& params, void* stream);

// The Tensor-level op behind hfport::rope (kernels/cpu/rope.h) for tensors on a CUDA device
// (defined in rope_op.cpp): the same checks (plan_rope) and results, on hfport's work stream.
// With options.inplace, q and k are rotated in their own memory, through their strides.
RopeResult rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                const RopeOptions& options);

}  // namespace hfport::cuda
