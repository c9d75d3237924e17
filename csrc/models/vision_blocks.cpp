// The ViT family's pre-norm block. See vision_blocks.h.
#include "models/vision_blocks.h"

#include <string>

#include "core/parallel.h"
#include "models/model_inputs.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"

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

// branch = branch * scale + residual (layer scale), or branch + residual.
void residual_add(const Tensor& branch, const Tensor& scale, const Tensor& residual) {
  if (scale.defined()) {
    scale_add_inplace(branch, scale, residual);
  } else {
    add_inplace(branch, residual);
  }
}

}  // namespace

PrenormBlock load_prenorm_block(const Parameters& params, int64_t i, bool swiglu,
                                bool layer_scale) {
  const std::string p = "blk." + std::to_string(i) + ".";
  PrenormBlock block;
  block.attn_norm_w = params.get(p + "attn_norm.weight");
  block.attn_norm_b = params.get(p + "attn_norm.bias");
  block.qkv_w = params.get(p + "attn_qkv.weight");
  if (const Tensor* bias = params.find(p + "attn_qkv.bias")) block.qkv_b = *bias;
  block.out_w = params.get(p + "attn_out.weight");
  block.out_b = params.get(p + "attn_out.bias");
  block.ffn_norm_w = params.get(p + "ffn_norm.weight");
  block.ffn_norm_b = params.get(p + "ffn_norm.bias");
  const std::string up = swiglu ? "ffn_gate_up" : "ffn_up";
  block.up_w = params.get(p + up + ".weight");
  block.up_b = params.get(p + up + ".bias");
  block.down_w = params.get(p + "ffn_down.weight");
  block.down_b = params.get(p + "ffn_down.bias");
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
  const Shape bshd = {batch, seq, options.heads, head_dim};
  const Shape strides = {seq * 3 * hidden, 3 * hidden, head_dim, 1};
  AttentionOptions attention_options;
  attention_options.layout = AttentionLayout::BSHD;
  LinearOptions up_options;
  up_options.activation = options.gelu == GeluApproximation::Tanh ? LinearActivation::GeluTanh
                                                                   : LinearActivation::Gelu;
  for (const PrenormBlock& block : blocks) {
    const Tensor qkv = linear(layer_norm(h, block.attn_norm_w, block.attn_norm_b, options.eps),
                              block.qkv_w, block.qkv_b);
    const auto part = [&](int64_t which) {
      return Tensor(qkv.storage(), qkv.byte_offset() + static_cast<size_t>(which * hidden) * 4,
                    DType::F32, bshd, strides);
    };
    const Tensor context =
        attention(part(0), part(1), part(2), attention_options).out.view({batch, seq, hidden});
    const Tensor a = linear(context, block.out_w, block.out_b);
    residual_add(a, block.ls1, h);
    h = a;
    const Tensor normed = layer_norm(h, block.ffn_norm_w, block.ffn_norm_b, options.eps);
    Tensor inner;
    if (options.swiglu) {
      const Tensor gate_up = linear(normed, block.up_w, block.up_b);
      const int64_t half = gate_up.shape()[2] / 2;
      inner = swiglu(gate_up.slice(2, 0, half), gate_up.slice(2, half, 2 * half));
    } else {
      inner = linear(normed, block.up_w, block.up_b, Tensor(), up_options);
    }
    const Tensor f = linear(inner, block.down_w, block.down_b);
    residual_add(f, block.ls2, h);
    h = f;
    if (hidden_states != nullptr) hidden_states->push_back(h);
  }
  return h;
}

}  // namespace hfport::models
