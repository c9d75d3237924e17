// The ViT family's pre-norm block. See vision_blocks.h.
#include "models/vision_blocks.h"

#include <algorithm>
#include <string>

#include "core/parallel.h"
#include "models/model_inputs.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope.h"
#ifdef HFPORT_WITH_CUDA
#include "kernels/cuda/vision_steps.h"
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::models {

namespace {

// a[r, c] = a[r, c] * scale[c] + residual[r, c], rows spread over the pool.
void scale_add_inplace(const Tensor& a, const Tensor& scale, const Tensor& residual) {
  const int64_t cols = scale.numel();
  const int64_t rows = a.numel() / cols;
  float* x = a.data_as<float>();
  const float* s = scale.data_as<float>();
  const float* r = residual.data_as<float>();
  parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t c = 0; c < cols; ++c) {
        const float scaled = x[i * cols + c] * s[c];
        x[i * cols + c] = scaled + r[i * cols + c];
      }
    }
  });
}

// branch = branch * scale + residual (layer scale), or branch + residual, where branch lives.
void residual_add(const Tensor& branch, const Tensor& scale, const Tensor& residual) {
  if (!scale.defined()) {
    add_inplace(branch, residual);
    return;
  }
  if (branch.device().type == DeviceType::CUDA) {
#ifdef HFPORT_WITH_CUDA
    cuda::CurrentDevice current(branch.device());
    cuda::ScaleAddParams p;
    p.cols = scale.numel();
    p.rows = branch.numel() / p.cols;
    p.a = branch.data_as<float>();
    p.scale = scale.data_as<float>();
    p.residual = residual.data_as<float>();
    cuda::scale_add_inplace(p, cuda::op_stream());
    return;
#endif
  }
  scale_add_inplace(branch, scale, residual);
}

Tensor optional(const Parameters& params, const std::string& name) {
  const Tensor* t = params.find(name);
  return t != nullptr ? *t : Tensor();
}

// [3 * hidden]: attn_q.bias, attn_k.bias, attn_v.bias one after the other, zeros for an absent one
// (adding 0 changes nothing); undefined when all three are absent.
Tensor fused_qkv_bias(const Parameters& params, const std::string& prefix, int64_t hidden) {
  const Tensor* parts[3] = {params.find(prefix + "attn_q.bias"), params.find(prefix + "attn_k.bias"),
                            params.find(prefix + "attn_v.bias")};
  if (parts[0] == nullptr && parts[1] == nullptr && parts[2] == nullptr) return Tensor();
  Tensor fused = Tensor::empty(DType::F32, {3 * hidden});
  float* dst = fused.data_as<float>();
  for (int64_t which = 0; which < 3; ++which) {
    if (parts[which] == nullptr) {
      std::fill(dst + which * hidden, dst + (which + 1) * hidden, 0.0f);
    } else {
      const Tensor part = parts[which]->contiguous();
      std::copy(part.data_as<float>(), part.data_as<float>() + hidden, dst + which * hidden);
    }
  }
  return fused;
}

}  // namespace

PrenormBlock load_prenorm_block(const Parameters& params, int64_t i, bool swiglu,
                                bool layer_scale) {
  const std::string p = "blk." + std::to_string(i) + ".";
  PrenormBlock block;
  block.attn_norm_w = params.get(p + "attn_norm.weight");
  block.attn_norm_b = params.get(p + "attn_norm.bias");
  block.qkv_w = params.get(p + "attn_qkv.weight");
  if (const Tensor* bias = params.find(p + "attn_qkv.bias")) {
    block.qkv_b = *bias;
  } else {
    block.qkv_b = fused_qkv_bias(params, p, block.qkv_w.shape()[0] / 3);
  }
  block.out_w = params.get(p + "attn_out.weight");
  block.out_b = optional(params, p + "attn_out.bias");
  block.ffn_norm_w = params.get(p + "ffn_norm.weight");
  block.ffn_norm_b = params.get(p + "ffn_norm.bias");
  const std::string up = swiglu ? "ffn_gate_up" : "ffn_up";
  block.up_w = params.get(p + up + ".weight");
  block.up_b = optional(params, p + up + ".bias");
  block.down_w = params.get(p + "ffn_down.weight");
  block.down_b = optional(params, p + "ffn_down.bias");
  if (layer_scale) {
    block.ls1 = params.get(p + "ls1.weight").contiguous();
    block.ls2 = params.get(p + "ls2.weight").contiguous();
  }
  return block;
}

Tensor run_prenorm_blocks(Tensor h, const std::vector<PrenormBlock>& blocks,
                          const PrenormBlockOptions& options, std::vector<Tensor>* hidden_states) {
  const int64_t batch = h.shape()[0], seq = h.shape()[1], hidden = h.shape()[2];
  const int64_t head_dim = hidden / options.heads;
  const Shape strides = {seq * 3 * hidden, 3 * hidden, head_dim, 1};
  AttentionOptions attention_options;
  attention_options.layout = AttentionLayout::BSHD;
  LinearOptions up_options;
  up_options.activation = options.gelu == GeluApproximation::Tanh ? LinearActivation::GeluTanh
                                                                   : LinearActivation::Gelu;
  // On the CPU each residual add is fused with the norm that reads its sum (ops/norm.h,
  // add_into_layer_norm): the attention's with ffn_norm, the MLP's with the next block's attn_norm.
  const bool fuse_residual_norm = h.device().type == DeviceType::CPU;
  Tensor attn_input;  // the next block's attn_norm(h), when the last block's residual step made it
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PrenormBlock& block = blocks[i];
    if (!attn_input.defined()) {
      attn_input = layer_norm(h, block.attn_norm_w, block.attn_norm_b, options.eps);
    }
    const Tensor qkv = linear(attn_input, block.qkv_w, block.qkv_b);
    attn_input = Tensor();
    const auto part = [&](int64_t which) {
      return fused_projection_part(qkv, 3, which, options.heads);
    };
    if (options.rope_cos.defined()) {
      // q and k of the patch tokens, rotated where they lie in the projection.
      const int64_t prefix = options.rope_prefix;
      const auto patches = [&](int64_t which) {
        const size_t offset = static_cast<size_t>(prefix * 3 * hidden + which * hidden) * 4;
        return Tensor(qkv.storage(), qkv.byte_offset() + offset, DType::F32,
                      {batch, seq - prefix, options.heads, head_dim}, strides);
      };
      RopeOptions rope_options;
      rope_options.inplace = true;
      rope_options.layout = AttentionLayout::BSHD;
      rope(patches(0), patches(1), options.rope_cos, options.rope_sin, rope_options);
    }
    const Tensor context =
        attention(part(0), part(1), part(2), attention_options).out.view({batch, seq, hidden});
    const Tensor a = linear(context, block.out_w, block.out_b);
    Tensor normed;
    if (fuse_residual_norm) {
      normed = add_into_layer_norm(a, h, block.ls1, block.ffn_norm_w, block.ffn_norm_b, options.eps);
    } else {
      residual_add(a, block.ls1, h);
      normed = layer_norm(a, block.ffn_norm_w, block.ffn_norm_b, options.eps);
    }
    h = a;
    Tensor inner;
    if (options.swiglu) {
      const Tensor gate_up = linear(normed, block.up_w, block.up_b);
      const int64_t half = gate_up.shape()[2] / 2;
      inner = swiglu(gate_up.slice(2, 0, half), gate_up.slice(2, half, 2 * half));
    } else {
      inner = linear(normed, block.up_w, block.up_b, Tensor(), up_options);
    }
    const Tensor f = linear(inner, block.down_w, block.down_b);
    if (fuse_residual_norm && i + 1 < blocks.size()) {
      const PrenormBlock& next = blocks[i + 1];
      attn_input = add_into_layer_norm(f, h, block.ls2, next.attn_norm_w, next.attn_norm_b,
                                       options.eps);
    } else {
      residual_add(f, block.ls2, h);
    }
    h = f;
    if (hidden_states != nullptr) hidden_states->push_back(h);
  }
  return h;
}

}  // namespace hfport::models
