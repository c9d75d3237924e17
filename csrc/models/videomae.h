// VideoMAE (transformers VideoMAEModel and VideoMAEForVideoClassification), native.
//
// pixel_values [batch, num_frames, channels, H, W] (transformers' video layout; read in place as
// [batch, channels, frames, H, W]):
//   h = patch_embed(video, patch_embd, patch = (tubelet_size, patch_size, patch_size))
//       + sincos                       [batch, (frames / tubelet) * (H / patch)^2, hidden]
// sincos is the fixed table of get_sinusoid_encoding_table (angle pos / 10000^(2 (j // 2) / hidden),
// sine on even j, cosine on odd j; float64, then float32), so there is no class token and no
// learned positions. bool_masked_pos [batch, patches] (the same count set in every row) drops the
// masked tubelets after the positions are added, as VideoMAE's pre-training encoder does.
// Then the ViT family's pre-norm blocks (models/vision_blocks.h) with the q, k and v biases joined;
// last_hidden_state = layer_norm(h, output_norm) without mean pooling, h itself with it
// (use_mean_pooling, the default: the norm belongs to the head). The video_classification head:
// cls.out(layer_norm(mean over tokens, cls.norm, eps 1e-5)) with mean pooling, cls.out(h[:, 0])
// without. hidden_states: the embeddings, then each block's output.
//
// transformers refuses a frame size other than config.json's image_size, and its fixed positions
// fix the number of tubelets; so does this model (ArgumentError naming the expected shape), and a
// frame count that is not a multiple of tubelet_size. F32 throughout.
//
// Devices: on a CUDA device (the builders' `device`) the parameters and the position table move
// there once at build, pixel_values must already be there (DeviceError otherwise, as torch), and
// the same steps run through the ops' CUDA sides (patch_embed's strided gather + GEMM, layer_norm,
// linear, attention) and kernels/cuda/vision_steps.h (positions added, token means); the masked
// tubelets are dropped by a row gather whose row ids the host works out from bool_masked_pos. A
// BF16 checkpoint is widened at load, as on the CPU. Compiled, not yet run on a GPU.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

std::unique_ptr<Model> build_videomae_model(nlohmann::json config,
                                            std::vector<std::pair<std::string, Tensor>> state,
                                            const Device& device, const std::string& head);

// OpenGVLab's VideoMAE v2 (family videomae_opengvlab): the same encoder as OpenGVLab's
// VisionTransformer computes it. Its sizes come from config.json's model_config (embed_dim,
// depth, num_heads, img_size, patch_size, in_chans, num_frames, tubelet_size, layer_norm_eps
// (default 1e-6) for every norm). The q and v biases without a k bias (zeros, as its attention
// adds them); layer scale gamma_1/gamma_2 when init_values > 0; the learned position table
// pos_embed with use_learnable_pos_emb, else the same sin-cos table. pixel_values in the layout
// above (the image processor's [batch, frames, channels, H, W]; OpenGVLab's own forward takes
// [batch, channels, frames, H, W] and its README permutes the processor's output to it).
// Outputs: with use_mean_pooling (the default) last_hidden_state = the last block's output and
// pooled = fc_norm(its mean over tokens); without, last_hidden_state = norm(that) and pooled its
// first token (forward_features); logits = head(pooled) when num_classes > 0.
// Refused (ConfigError): cos_attn, qk_scale, attn_head_dim, a norm_layer other than nn.LayerNorm.
std::unique_ptr<Model> build_videomae_opengvlab_model(
    nlohmann::json config, std::vector<std::pair<std::string, Tensor>> state,
    const Device& device, const std::string& head);

}  // namespace hfport::models
