// What the selective state update kernels of both devices read the same way: one step's x, dt,
// z and the state they update, with their strides. Each device's SelectiveStateUpdateParams
// (kernels/cpu/selective_scan.h, kernels/cuda/selective_scan.h) adds how it reads A, B, C, D and
// dt_bias (the CPU packs them to F32; CUDA reads them in place through strides), and the entry
// point fills this part with one function (ops/selective_scan.h) for both.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct SelectiveStateUpdateStep {
  int64_t batch = 0, dim = 0, dstate = 0;
  int64_t n_groups = 1;      // B and C are [batch, G, N] ([batch, N]: G = 1); G divides dim
  DType dtype = DType::F32;  // of x, dt, z and out: F32, F16 or BF16
  const void* x = nullptr;   // [batch, dim]
  int64_t x_batch_stride = 0, x_dim_stride = 0;
  const void* dt = nullptr;  // [batch, dim]
  int64_t dt_batch_stride = 0, dt_dim_stride = 0;
  const void* z = nullptr;   // [batch, dim] or null
  int64_t z_batch_stride = 0, z_dim_stride = 0;
  DType state_dtype = DType::F32;
  void* state = nullptr;     // [batch, dim, N], updated in place
  int64_t state_batch_stride = 0, state_dim_stride = 0, state_state_stride = 0;
};

}  // namespace hfport
