// CLAP (transformers ClapModel), native: an HTSAT Swin audio tower and a RoBERTa text tower, each
// with its projection, and the audio-text similarity logits.
//
// Audio tower (ClapAudioEncoder), for input_features [batch, channels, time, num_mel_bins]
// (ClapFeatureExtractor's log-mel frames; channels 1, or 4 with enable_fusion: the whole clip
// resized, then three crops):
//   x = mel_norm(x) over the mel bins (BatchNorm2d in eval: running statistics, eps 1e-5)
//   reshape_mel2img: time < spec_size * freq_ratio is resized to it (bicubic, align_corners=True,
//     ops/interpolate.h), as are mel bins < spec_size / freq_ratio (after the time resize, to the
//     ORIGINAL time length, as transformers writes it; a spectrogram short on both axes is thus
//     refused, as transformers refuses it); then the freq_ratio slices of time are stacked
//     along the mel axis: img[b, c, r * F + f, t] = x[b, c, r * (T / freq_ratio) + t, f]
//   patch embed: patch_embd (a conv whose stride is its kernel, ops/patch_embed.h) of channel 0,
//     [batch, grid_h * grid_w, E]; with fusion, the examples whose is_longer is set also run
//     channels 1..3 through patch_embd_mel (kernel and stride [p, 3p]), laid side by side along
//     the width and zero-padded to grid_w, and the two are mixed by the AFF block:
//       a = g + l;  w = sigmoid(local(a) + global(mean over the grid of a))
//       local/global: conv1 (1x1) -> bn1 -> relu -> conv2 (1x1) -> bn2;  out = 2 g w + 2 l (1 - w)
//     then patch_embd_norm (enable_patch_layer_norm; eps 1e-5)
//   stages i (resolution grid / 2^i, width E 2^i): blocks j, shift 0 for even j and window / 2 for
//     odd j (0 when the resolution is no larger than the window); each block (SwinLayer):
//       h = attn_norm(x), zero-padded to whole windows, rolled by -shift, cut into windows;
//       attention per window and head with the relative position bias (attn_rel_pos_bias rows
//       picked by the relative offset) and, when shifted, the -100 mask between the 9 regions;
//       the windows put back, rolled by +shift, cropped; x += attn_out(.)
//       x += ffn_down(act(ffn_up(ffn_norm(x))))
//     then (not after the last stage) patch merging: the 2x2 neighbours concatenated in
//     transformers' order (x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]),
//     merge_norm (eps 1e-5), merge (no bias)
//   output_norm (eps 1e-5); pooler_output = the mean over every position; last_hidden_state is
//   the normed sequence in transformers' grouped layout [batch, C, f / freq_ratio, freq_ratio * t]
//   audio_embeds = proj2(relu(proj1(pooler_output))), L2-normalised
// Text tower (ClapTextModel: RoBERTa, models/encoder_layers.h): embeddings with RoBERTa's position
// ids, post-norm blocks with the key padding mask, pooler tanh(pooler(h[:, 0])); text_embeds =
// proj2(relu(proj1(pooler))), L2-normalised.
// logits_per_text = text_embeds audio_embeds^T exp(text.logit_scale); logits_per_audio =
// audio_embeds text_embeds^T exp(audio.logit_scale).
//
// hidden_states follow transformers: audio, the patch embedding then each stage's output (after
// its merge), as [batch, C, H, W]; text, the embeddings then each layer. block_states (audio, not
// in transformers' outputs) holds every Swin block's output [batch, H * W, C], stage by stage, for
// the parity table.
//
// Refused with ConfigError where transformers' own forward cannot run (a resolution smaller than
// the window, odd stage resolutions that patch merging cannot halve into the next stage's, the
// channel_map fusion whose patch_embd reads 4 channels) or what this port leaves out
// (patch_size != patch_stride, flatten_patch_embeds off, activations other than gelu / relu).
// F32 on the host; a CUDA device is refused (models/registry.cpp).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace hfport::models {

// One tower's outputs, as ClapModel.get_audio_features / get_text_features return them
// (BaseModelOutputWithPooling, whose pooler_output transformers 5 replaces by the normalised
// projection) plus the tower's own pooler output.
struct ClapTowerOutput {
  Tensor last_hidden_state;
  Tensor pooler_output;  // the tower's pooling, before the projection
  Tensor embeds;         // proj2(relu(proj1(pooler_output))) / max(||.||, 1e-12)   [batch, proj]
  std::vector<Tensor> hidden_states;
  std::vector<Tensor> block_states;  // audio only
};

struct ClapOutput {
  Tensor logits_per_audio, logits_per_text, text_embeds, audio_embeds;
  ClapTowerOutput text, audio;
};

class ClapModel : public Model {
 public:
  // input_features [batch, channels, time, num_mel_bins], any float dtype; is_longer [batch] or
  // [batch, 1] of 0/1 (bool or integers), required with enable_fusion and ignored without.
  virtual ClapTowerOutput audio_features(const Tensor& input_features, const Tensor& is_longer,
                                         bool output_hidden_states) = 0;
  // input_ids [batch, seq] I64/I32; attention_mask [batch, seq] (1 = token) or undefined.
  virtual ClapTowerOutput text_features(const Tensor& input_ids, const Tensor& attention_mask,
                                        bool output_hidden_states) = 0;
  virtual ClapOutput forward_pair(const Tensor& input_ids, const Tensor& attention_mask,
                                  const Tensor& input_features, const Tensor& is_longer,
                                  bool output_hidden_states) = 0;
};

std::unique_ptr<Model> build_clap_model(nlohmann::json config,
                                        std::vector<std::pair<std::string, Tensor>> state,
                                        const std::string& head);

}  // namespace hfport::models
