// The kernel's view of one attention call, the same struct for the CPU kernel
// (kernels/cpu/attention.h) and the CUDA ones (kernels/cuda/attention.h, flash_attention.h). The
// entry point (ops/attention.h: check_attention) fills it after every check: dims, element
// strides in bhsd order whatever the layout, raw pointers on the device that runs the kernel.
// Mask strides are 0 along broadcast dims. See ops/attention.h for the semantics (positions,
// masking, precision).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct AttentionParams {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0, v_dim = 0;
  DType dtype = DType::F32;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t q_stride[3] = {};  // batch, head, seq (the last dim is unit stride)
  int64_t k_stride[3] = {};
  int64_t v_stride[3] = {};
  void* out = nullptr;
  int64_t out_stride[3] = {};
  float* lse = nullptr;  // contiguous [B, Hq, Sq] or null

  float scale = 1.0f;
  bool causal = false;
  int64_t sliding_window = 0;  // 0: none
  const void* mask = nullptr;  // attn_mask or null
  DType mask_dtype = DType::F32;
  int64_t mask_stride[4] = {};  // batch, head, query, key
  const void* key_padding = nullptr;
  DType key_padding_dtype = DType::BOOL;
  int64_t key_padding_stride[2] = {};  // batch, key
};

}  // namespace hfport
