// Rotary position embeddings: the frequency tables transformers builds for each RoPE variant, and
// the rotation applied to q and k, on the device of its tensors (the CPU kernel of
// kernels/cpu/rope.h, or the CUDA side, ops/cuda/rope.h).
//
// Tables. `rope_frequencies` computes inv_freq and the attention scaling exactly as transformers
// 5.x's ROPE_INIT_FUNCTIONS (modeling_rope_utils.py) and the models' default init do, for the
// types default, linear, dynamic, yarn, longrope and llama3: the same float32 operations in the
// same order, so the results agree to an ulp or so (only pow and cos may round differently).
// `rope_config_from_json` reads a config.json object the way transformers' standardize_rope_params
// does: `rope_parameters` (5.x) or `rope_scaling` (4.x), `rope_type` or the older `type`,
// `rope_theta` and `partial_rotary_factor` from the parameters or the top level,
// `original_max_position_embeddings` from the top level first (Phi-3) for llama3/yarn/longrope.
// `rope_table` gives cos and sin for given positions in transformers' layout: [.., rotary_dim]
// with the rotary_dim/2 frequencies written twice (cat(freqs, freqs)), each multiplied by the
// attention scaling, f32. transformers' dynamic and longrope update their frequencies from
// the largest position seen; hfport keeps no state, so `seq_len` (default: the largest position
// + 1) says which table to build. To reproduce a transformers module that has grown its dynamic
// cache past the current length, pass that cached length.
//
// Rotation. `rope(q, k, cos, sin)` rotates the first rotary_dim features of every head of q and
// k (the rest pass through, "partial rotary"):
//   half-split (LLaMA, NeoX):  x[i], x[i + R/2]   with frequency i   (transformers rotate_half)
//   interleaved (GPT-J):       x[2i], x[2i + 1]   with frequency i
//   (a, b) -> (a cos_i - b sin_i, b cos_i + a sin_i)
// cos/sin are [S, W] or [B, S, W] (B may be 1) in f32/f16/bf16: row s belongs to position s of
// q and k, so a decode step passes the rows of its own positions. W is rotary_dim (transformers'
// cat layout, of which the first half is read) or rotary_dim / 2 (one value per frequency, as
// flash-attn takes them); rotary_dim defaults to W. A GPT-J style repeat_interleave table is
// passed as cos[..., ::2]. q and k are [B, H, S, D] or [B, S, H, D] (layout), may have different
// head counts, f32/f16/bf16, any strides with a unit last dimension; the products are f32 and the
// result is rounded once to the input dtype. With inplace the results are written into q and k
// (each element is read before it is written, so aliasing is safe) and q and k are returned.
//
// `rope_reference` is the plain float64 version the tests check against.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "kernels/rope_params.h"
#include "ops/attention.h"

namespace hfport {

enum class RopeType { Default, Linear, Dynamic, Yarn, LongRope, Llama3 };

// Everything the frequency computation reads, already resolved from a config.
struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  int64_t head_dim = 0;
  double partial_rotary_factor = 1.0;
  int64_t max_position_embeddings = 0;
  std::optional<double> factor;                             // linear, dynamic, yarn, llama3; longrope
  std::optional<int64_t> original_max_position_embeddings;  // yarn, longrope, llama3
  std::optional<double> attention_factor;                   // yarn, longrope
  std::optional<double> beta_fast, beta_slow, mscale, mscale_all_dim;  // yarn
  bool truncate = true;                                     // yarn
  std::vector<double> short_factor, long_factor;            // longrope
  double low_freq_factor = 0.0, high_freq_factor = 0.0;     // llama3

  int64_t rotary_dim() const;  // int(head_dim * partial_rotary_factor)
};

// Throws ConfigError naming the missing or malformed field.
RopeConfig rope_config_from_json(const nlohmann::json& config);

struct RopeFrequencies {
  std::vector<float> inv_freq;  // rotary_dim / 2
  float attention_scaling = 1.0f;
};

// seq_len: the current length for dynamic (default max_position_embeddings) and longrope
// (long factors when > original_max_position_embeddings; default: short ones).
RopeFrequencies rope_frequencies(const RopeConfig& config,
                                 std::optional<int64_t> seq_len = std::nullopt);

struct RopeTable {
  Tensor cos;  // positions' shape + [rotary_dim], F32
  Tensor sin;
};

// positions: I64 or I32, [S] or [B, S]. seq_len defaults to max(positions) + 1.
RopeTable rope_table(const RopeConfig& config, const Tensor& positions,
                     std::optional<int64_t> seq_len = std::nullopt);

// DINOv3's axial table (transformers' DINOv3ViTRopePositionEmbedding at eval, where its position
// shift, jitter and rescale are off): for a grid_h x grid_w grid of patches in row-major order,
// the patch centres (y, x) = 2 (i + 0.5) / n - 1 in [-1, 1], inv_freq = 1 / theta^(4j / head_dim)
// for j < head_dim / 4, and for each patch the head_dim / 2 angles 2 pi y inv_freq, then
// 2 pi x inv_freq, written twice (transformers' tile(2)): cos and sin [grid_h * grid_w, head_dim],
// F32, for `rope` (half-split) on the patch tokens only. The float32 steps are transformers'.
// ArgumentError unless grid_h, grid_w >= 1, head_dim a positive multiple of 4 and theta > 0.
RopeTable rope_2d_table(int64_t grid_h, int64_t grid_w, int64_t head_dim, double theta);

struct RopeOptions {
  bool interleaved = false;
  std::optional<int64_t> rotary_dim;
  bool inplace = false;
  AttentionLayout layout = AttentionLayout::BHSD;
};

struct RopeResult {
  Tensor q;
  Tensor k;  // undefined when k was
};

// k may be undefined (q alone is rotated). Runs on the device of its tensors (all on one:
// DeviceError otherwise), the CPU or CUDA.
RopeResult rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                const RopeOptions& options = {});

// What rope checks and prepares on either device (the CUDA side, ops/cuda/rope.cpp, runs it too):
// dtypes, shapes, rotary_dim and the tables checked (not the device), and the kernels' parameters
// (kernels/rope_params.h) for q and k with their outputs still unset. Views the kernels cannot
// read (a q or k whose last stride is not 1; cos and sin with different strides) go through
// `contiguous`, which copies on the tensors' device; `keep_alive` holds those copies until the
// kernels have run.
struct RopePlan {
  RopeParams q, k;
  bool has_k = false;
  std::vector<Tensor> keep_alive;
};
using RopeContiguous = std::function<Tensor(const char* arg, const Tensor& t)>;
RopePlan plan_rope(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                   const RopeOptions& options, const RopeContiguous& contiguous);
// Points `params` at `out` (the shape of its input, in `layout`, any strides).
void set_rope_output(RopeParams& params, const Tensor& out, AttentionLayout layout);

// F64 results in the inputs' shapes; inplace is ignored.
RopeResult rope_reference(const Tensor& q, const Tensor& k, const Tensor& cos, const Tensor& sin,
                          const RopeOptions& options = {});

}  // namespace hfport
