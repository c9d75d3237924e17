// The kernel's view of one tensor's RoPE rotation, the same struct for the CPU kernel
// (kernels/cpu/rope.h) and the CUDA one (kernels/cuda/rope.h). The entry point fills it
// (ops/rope.h: plan_rope, set_rope_output) after every check.
//
// x is [batch, heads, seq, head_dim] in any layout the three element strides (batch, head, seq)
// describe, with a unit stride over head_dim: bhsd and bshd are both just strides. The first
// rotary_dim features of each head row rotate (half-split: x[i], x[i + R/2]; interleaved: x[2i],
// x[2i + 1]; pair i uses frequency i), the rest are copied through. cos and sin hold frequency i
// at element i of row (b, s), at b * table_stride[0] + s * table_stride[1] (table_stride[0] = 0
// broadcasts one table over the batch). Arithmetic is f32; each result is rounded once to x's
// dtype. out may be x itself (each element is read before it is written); any other overlap is
// undefined.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct RopeParams {
  int64_t batch = 0, heads = 0, seq = 0, head_dim = 0, rotary_dim = 0;
  bool interleaved = false;
  DType dtype = DType::F32;        // of x and out: F32, F16 or BF16
  const void* x = nullptr;
  int64_t x_stride[3] = {};        // batch, head, seq (elements)
  void* out = nullptr;             // x's dtype; may be x itself (in place)
  int64_t out_stride[3] = {};
  DType table_dtype = DType::F32;  // of cos and sin: F32, F16 or BF16
  const void* cos = nullptr;
  const void* sin = nullptr;
  int64_t table_stride[2] = {};    // batch (0 when broadcast), seq; frequency i is element i
};

}  // namespace hfport
