// The pre-norm transformer block the ViT-family encoders share (ViT, DINOv2, VideoMAE):
//
//   h = h + ls1 * attn_out(attention(attn_qkv(layer_norm(h, attn_norm))))     (no mask, non-causal)
//   h = h + ls2 * mlp(layer_norm(h, ffn_norm))
//   mlp: ffn_down(gelu(ffn_up(x))), or SwiGLU: g, u = the halves of ffn_gate_up(x) (gate first,
//        transformers' chunk order), ffn_down(silu(g) * u)
//
// ls1 and ls2 are DINOv2's and DINOv3's layer scale (absent: 1). The layer-scaled branch is rounded
// as transformers rounds it, the product and then the sum. With a RoPE table (DINOv3), q and k of
// the tokens from rope_prefix on (the patches; the class and register tokens before them stay
// unrotated) are rotated half-split before the attention, in place in the qkv projection.
// Activations are contiguous F32 [batch, seq, hidden] on the parameters' device (the host, or a
// CUDA device: the same ops dispatch there, and the layer-scaled add is kernels/cuda/
// vision_steps.h); the attention reads q, k and v as strided views of the fused qkv projection
// (on the host without a copy; the CUDA attention gathers them).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "models/parameters.h"
#include "ops/activation.h"

namespace hfport::models {

struct PrenormBlock {
  // Optional: qkv_b, out_b, up_b, down_b (DINOv3 switches them off) and ls1, ls2.
  Tensor attn_norm_w, attn_norm_b, qkv_w, qkv_b, out_w, out_b, ls1;
  Tensor ffn_norm_w, ffn_norm_b, up_w, up_b, down_w, down_b, ls2;  // up: ffn_gate_up with SwiGLU
};

struct PrenormBlockOptions {
  int64_t heads = 0;
  double eps = 1e-12;
  bool swiglu = false;
  GeluApproximation gelu = GeluApproximation::None;  // without SwiGLU
  // DINOv3: cos and sin [patches, head_dim] (ops/rope.h rope_2d_table) for the tokens from
  // rope_prefix on; undefined for none.
  Tensor rope_cos, rope_sin;
  int64_t rope_prefix = 0;
};

// Block i's parameters by their native names (blk.{i}.*, docs/names.md): attn_qkv.bias when the
// load made it, else attn_q/attn_k/attn_v.bias fused into one (zeros for the absent ones: DINOv3
// switches them on one by one), ls1/ls2 with `layer_scale`, ffn_gate_up instead of ffn_up with
// `swiglu`; the output and MLP biases when present.
PrenormBlock load_prenorm_block(const Parameters& params, int64_t i, bool swiglu,
                                bool layer_scale);

// h [batch, seq, hidden] through every block; each block's output is appended to hidden_states
// when it is not null. Returns the last block's output.
Tensor run_prenorm_blocks(Tensor h, const std::vector<PrenormBlock>& blocks,
                          const PrenormBlockOptions& options, std::vector<Tensor>* hidden_states);

}  // namespace hfport::models
