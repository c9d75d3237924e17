// The ViT-family image encoder, native: what transformers' ViTModel, Dinov2Model and
// Dinov2WithRegistersModel compute, one model with the switches that tell them apart
// (VisionTransformerVariant). The families' builders (models/vit.h, models/dinov2.h) read config.json
// into a variant; everything else is here.
//
// Embeddings, for pixel_values [batch, channels, H, W] (F32 on the model's device; F16/BF16
// widened first, as transformers casts pixel_values to the weights' dtype):
//   patches = patch_embed(pixels, patch_embd, patch = patch_size)   [batch, gh * gw, hidden]
//   a patch whose bool_masked_pos is set becomes mask_embd (ViT blends x (1 - m) + token m, DINOv2
//     selects; for a 0/1 mask both give the token)
//   h = [cls_embd + pos[0], registers..., patches + pos[1:]]         (registers get no position)
// (DINOv3 adds no positions here: its blocks rotate q and k of the patches by a 2-D RoPE table of
// the image's grid, any size.) pos is the learned table pos_embd [1, 1 + s*s, hidden]. It is used
// as it is when the grid is
// s x s and H == W (transformers' test); otherwise its s x s patch part is resized to gh x gw by
// interpolate_bicubic (ops/interpolate.h): antialias off for ViT and DINOv2, on for DINOv2 with
// registers, in F32. ViT resizes only when asked (interpolate_pos_encoding), and otherwise needs H
// and W to be config.json's image_size; DINOv2 always resizes, as its transformers model does.
//
// Blocks: the pre-norm blocks of models/vision_blocks.h (DINOv2: layer scale ls1/ls2, and the
// SwiGLU MLP with use_swiglu_ffn). last_hidden_state = layer_norm(h, output_norm).
//
// Outputs (ModelOutput): last_hidden_state; pooled for the base model only, as transformers returns
// it: ViT's pooler tanh(pooler(last[:, 0])) when the checkpoint has one, DINOv2's pooler_output
// last[:, 0]; logits [batch, num_labels] with the image_classification head: cls.out on last[:, 0]
// (ViTForImageClassification), or on concat(last[:, 0], mean of the patch tokens, registers left
// out) (Dinov2ForImageClassification); hidden_states: the embeddings, then each block's output
// (transformers' tuple; its last entry is before the final norm). F32 throughout.
//
// Devices: on a CUDA device (build_vision_transformer's `device`) the parameters move there once
// at build, pixel_values must already be there (DeviceError otherwise, as torch), and the same
// steps run through the ops' CUDA sides (patch_embed, layer_norm, linear, attention, rope, swiglu)
// and kernels/cuda/vision_steps.h (token assembly, layer-scaled add, token means, tanh). The host
// keeps what it reads element by element: the class and register tokens (their rows with
// positions are uploaded once) and the position table, resized on the host per image size and
// uploaded per call, as are the RoPE table and the mask. Still F32 there: a BF16 checkpoint is
// widened at load as on the CPU. Compiled, not yet run on a GPU.
//
// timm's VisionTransformer (models/timm_vit.h) is the same encoder with more switches: no class
// token, register tokens that do (or, with no_embed_class, do not) get positions, a non-square
// img_size, a layer norm after the embeddings (pre_norm; hidden_states[0] is its output, the
// first block's input), no final norm, and its pooling: pooled = pool_norm(the first token, or
// the mean of the tokens after the prefix), logits = output(pooled).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "ops/activation.h"

namespace hfport::models {

struct VisionTransformerVariant {
  std::string family;
  int64_t hidden = 0, layers = 0, heads = 0;
  int64_t image_height = 0, image_width = 0, patch_size = 0, channels = 0;
  // How messages name config.json's image size ("image_size 32", "img_size [32, 48]").
  std::string image_size_text;
  double eps = 1e-12;
  // When the position table is resized: on request (ViT's interpolate_pos_encoding) or always
  // (DINOv2). antialias: the resize DINOv2 with registers calls.
  enum class PositionResize { OnRequest, Always };
  PositionResize resize = PositionResize::OnRequest;
  bool antialias = false;
  // Which table the resize leaves alone: transformers keeps it when the patch count is the
  // table's and the image is square in pixels; timm's resample_abs_pos_embed when the grid is
  // square. timm also needs a resized image to tile into whole patches (no dynamic_img_pad).
  bool timm_resize = false;
  int64_t registers = 0;
  bool class_token = true;  // timm's class_token=False: the sequence starts at the registers
  // The prefix tokens the position table has rows for: the class token (ViT, DINOv2), every
  // prefix token (timm), none (timm's no_embed_class: positions for the patches only).
  enum class PrefixPositions { ClassToken, All, None };
  PrefixPositions prefix_positions = PrefixPositions::ClassToken;
  bool pre_norm = false;  // embd_norm after the embeddings (timm's norm_pre)
  bool layer_scale = false;
  bool swiglu = false;
  GeluApproximation gelu = GeluApproximation::None;  // the MLP's activation without SwiGLU
  // pooled of the base model: ViT's dense + tanh pooler (when loaded), or the first token (DINOv2).
  // Timm: timm's forward_head without its head's dropout, whatever the head (see above).
  enum class Pooled { Pooler, FirstToken, Timm };
  Pooled pooled = Pooled::Pooler;
  // Pooled::Timm: global_pool "token" (the first token), "avg" (the mean of the tokens after the
  // class and register tokens, or of every token with pool_include_prefix) or "" (none).
  std::string global_pool = "token";
  bool pool_include_prefix = false;
  // The image_classification head's input: the first token, or it and the patch tokens' mean.
  enum class ClassifierInput { FirstToken, FirstTokenAndPatchMean };
  ClassifierInput classifier = ClassifierInput::FirstToken;
  // DINOv2 without use_mask_token ignores bool_masked_pos, as its transformers model does; ViT
  // without a mask token refuses it.
  bool mask_ignored_without_token = false;
  // DINOv3: no position table; q and k of the patch tokens are rotated by the axial RoPE table of
  // the image's patch grid (ops/rope.h rope_2d_table with this theta) in every block.
  bool rope_2d = false;
  double rope_theta = 100.0;
};

// The fields the transformers families read alike: the sizes (hidden_size, num_hidden_layers,
// num_attention_heads, image_size, patch_size, num_channels; ConfigError naming the family and the
// field when one is missing or not an integer) and layer_norm_eps (`default_eps` when absent).
VisionTransformerVariant vision_sizes(const std::string& family, const nlohmann::json& config,
                                      double default_eps);
// hidden_act: gelu -> exact, gelu_new / gelu_pytorch_tanh -> tanh; ConfigError otherwise.
GeluApproximation vision_gelu(const std::string& family, const nlohmann::json& config);

// `head`: "" (the base model) or "image_classification"; anything else is refused (require_head).
std::unique_ptr<Model> build_vision_transformer(VisionTransformerVariant variant,
                                                nlohmann::json config,
                                                std::vector<std::pair<std::string, Tensor>> state,
                                                const std::string& head,
                                                const Device& device = Device{});

}  // namespace hfport::models
