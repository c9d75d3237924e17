// Scaled dot-product attention: out = softmax(scale * q k^T + bias) v, one entry point for the
// variants transformers models use, on the device of its tensors (the CPU kernel of
// kernels/cpu/attention.h, or the CUDA side, ops/cuda/attention.h).
//
// Layout. q is [B, Hq, Sq, D] ("bhsd") or [B, Sq, Hq, D] ("bshd"); k is [B, Hkv, Sk, D] and v is
// [B, Hkv, Sk, Dv] in the same layout. Any strides work as long as the last dimension is unit
// stride (a tensor whose last dimension is not is copied first). The output has q's layout with
// Dv for D, and is contiguous. Hkv must divide Hq: query head h reads kv head h / (Hq / Hkv), as
// transformers' repeat_kv lays them out (GQA; Hkv = 1 is MQA).
//
// Positions. When Sq != Sk the queries are the LAST Sq positions of the Sk keys (a decode step
// against a cache): query i sits at position i + (Sk - Sq). Causal masking and the sliding
// window use these positions, which is transformers' behaviour with a cache and flash-attn's
// "bottom-right" alignment. torch SDPA's is_causal aligns top-left instead (query i sees keys
// 0..i); for Sq == Sk the two agree. With Sq > Sk the first Sq - Sk queries see no key at all.
//
// Masking. A key j is visible to query i unless any of these hides it:
//   causal          key position > query position;
//   sliding_window  query position - key position >= window (Mistral's rule: a query at p sees
//                   keys in (p - window, p]); it hides only past keys, so pair it with causal
//                   for a decoder;
//   key_padding     key_padding_mask[b, j] is 0/false (transformers' attention_mask: 1 = keep);
//   attn_mask       a boolean mask that is false there (SDPA's rule: true = take part), or an
//                   additive float mask that is -inf there. A float mask is added to the scaled
//                   scores; it broadcasts to [B, Hq, Sq, Sk] by numpy rules (2-D [Sq, Sk] and
//                   [B, 1, Sq, Sk] are the common shapes).
// A query that sees no key at all gets an output of zeros and a logsumexp of -inf, as torch
// SDPA (2.x) and flash-attn give, rather than NaN.
//
// Precision. f32, f16 and bf16 inputs (q, k, v of one dtype); every product and sum is f32;
// the output has the input dtype; the optional logsumexp (natural log of the softmax
// denominator of the scaled, masked scores) is f32 [B, Hq, Sq].
//
// Devices. q, k, v and the masks must all be on one device (DeviceError otherwise). On a CUDA
// device `attention` runs the CUDA kernels (ops/cuda/attention.h) with the same semantics:
// out and lse are allocated on that device, the masks are read there in place, and a q/k/v whose
// last dimension is not unit stride is copied there first.
//
// `attention_reference` is the plain version the tests check against: the same arguments, every
// score formed explicitly, float64 throughout, float64 results; host tensors only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/attention_params.h"

namespace hfport {

enum class AttentionLayout { BHSD, BSHD };

// "bhsd" / "bshd" (either case); throws hfport::Error naming the accepted spellings otherwise.
AttentionLayout attention_layout_from_name(const std::string& name);

struct AttentionOptions {
  bool causal = false;
  std::optional<double> scale;           // default 1 / sqrt(D)
  Tensor attn_mask;                      // undefined: none; BOOL (true = keep) or F32/F16/BF16 (added)
  Tensor key_padding_mask;               // undefined: none; [B, Sk], BOOL/U8/I8/I32/I64, nonzero = keep
  std::optional<int64_t> sliding_window; // >= 1
  AttentionLayout layout = AttentionLayout::BHSD;
  bool return_lse = false;
};

struct AttentionResult {
  Tensor out;  // q's layout with Dv for D; q's dtype (F64 from attention_reference)
  Tensor lse;  // [B, Hq, Sq] F32 (F64 from attention_reference); undefined unless asked for
};

AttentionResult attention(const Tensor& q, const Tensor& k, const Tensor& v,
                          const AttentionOptions& options = {});

// What `attention` has made of its arguments once every check has passed: the kernels' Params
// (kernels/attention_params.h) with everything but out and lse filled (out_stride is that of a
// contiguous out_shape tensor), the one device of all the tensors, and the tensors the pointers
// point into (copies included), which must outlive the kernel.
struct CheckedAttention {
  AttentionParams params;
  Device device;
  Shape out_shape;
  std::vector<Tensor> keep_alive;
};

// The checks `attention` and `attention_reference` make, shared by every device's path; a q, k or
// v whose last dimension is not unit stride is copied on its own device.
CheckedAttention check_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& options);

AttentionResult attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

}  // namespace hfport
