// HTSAT, the Swin audio encoder of CLAP (transformers ClapAudioEncoder), native: models/clap.h
// puts the projection and the text tower around it.
//
// For input_features [batch, channels, time, num_mel_bins]
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
//
// hidden_states follow transformers: the patch embedding then each stage's output (after its
// merge), as [batch, C, H, W]. block_states (not in transformers' outputs) holds every Swin
// block's output [batch, H * W, C], stage by stage, for the parity table.
//
// Refused with ConfigError where transformers' own forward cannot run (a resolution smaller than
// the window, odd stage resolutions that patch merging cannot halve into the next stage's, the
// channel_map fusion whose patch_embd reads 4 channels) or what this port leaves out
// (patch_size != patch_stride, flatten_patch_embeds off, hidden_act other than the gelus).
// F32 on the host.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/parameters.h"

namespace hfport::models {

struct HtsatOutput {
  Tensor last_hidden_state;  // [batch, C, f / freq_ratio, freq_ratio * t], transformers' layout
  Tensor pooler_output;      // [batch, C]: the mean over every position
  std::vector<Tensor> hidden_states, block_states;  // with output_hidden_states
};

class HtsatEncoder {
 public:
  // audio_config: config.json's; params: the audio tower's parameters without their "audio."
  // prefix (mel_norm.*, patch_embd.*, stage.{i}.blk.{j}.*, ...). ConfigError as described above.
  HtsatEncoder(const nlohmann::json& audio_config, Parameters params);
  ~HtsatEncoder();
  HtsatEncoder(HtsatEncoder&&) noexcept;
  HtsatEncoder& operator=(HtsatEncoder&&) noexcept;

  // input_features [batch, channels, time, num_mel_bins], any float dtype; is_longer [batch] or
  // [batch, 1] of 0/1 (bool or integers), required with enable_fusion and ignored without.
  // ArgumentError naming what was expected for anything else.
  HtsatOutput forward(const Tensor& input_features, const Tensor& is_longer,
                      bool output_hidden_states) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hfport::models
