// The kernel's view of one RWKV-4 WKV call (the time-mix recurrence). The entry points
// (ops/rwkv_wkv.h) fill it after every check, with pointers on the device that runs the kernel
// (kernels/cpu/rwkv_wkv.h, kernels/cuda/rwkv_wkv.h).
//
// Per batch b and channel c, with w' = -exp(w[c]) and the state (num, den, max) standing for the
// sums num * exp(max) and den * exp(max), step t:
//   q   = max(max, u + k_t);  y_t = (e^(max-q) num + e^(u+k_t-q) v_t) / (e^(max-q) den + e^(u+k_t-q))
//   q'  = max(max + w', k_t); num = e^(max+w'-q') num + e^(k_t-q') v_t
//                             den = e^(max+w'-q') den + e^(k_t-q');  max = q'
// which is transformers' rwkv_linear_attention_cpu (and the CUDA kernel it loads) step for step.
// A step whose mask entry is 0 is skipped: its output is 0 and the state is left as it was.
//
// k, v and out share one dtype (F32, F16 or BF16); k and v are read through element strides, out
// is contiguous. w (the decay as stored, before -exp) and u are F32 [C]. The state is three
// contiguous F32 [batch, C] arrays, read as the state before the first step and overwritten with
// the state after the last. All arithmetic is F32.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace hfport {

struct RwkvWkvParams {
  int64_t batch = 0, seqlen = 0, channels = 0;
  DType dtype = DType::F32;  // of k, v and out
  const void* k = nullptr;   // [batch, L, C]
  int64_t k_batch_stride = 0, k_seq_stride = 0, k_channel_stride = 0;
  const void* v = nullptr;   // [batch, L, C]
  int64_t v_batch_stride = 0, v_seq_stride = 0, v_channel_stride = 0;
  const float* w = nullptr;  // [C], the stored time_decay: each step decays by exp(-exp(w))
  const float* u = nullptr;  // [C], time_first: the bonus of the current token
  const uint8_t* mask = nullptr;  // [batch, L] contiguous 0/1, or null (every step counts)
  float* num = nullptr;      // [batch, C], in and out
  float* den = nullptr;
  float* max = nullptr;
  void* out = nullptr;       // [batch, L, C] contiguous, k's dtype
};

}  // namespace hfport
