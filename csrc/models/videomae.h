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
// frame count that is not a multiple of tubelet_size. F32, CPU only.
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
                                            const std::string& head);

}  // namespace hfport::models
