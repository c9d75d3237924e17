// What the native models share before and between their kernels: checking the token ids and the
// attention mask a caller passes, looking rows up in an embedding table, reading config.json
// fields, and the few elementwise steps (residual adds, masking rows, tanh) that need no kernel.
//
// Activations are contiguous [batch, seq, hidden] throughout (F32 on the host); the helpers assume
// it and say so in their checks. Errors name the model family and the argument.
//
// Devices: the ids and the mask are checked on the host (copied there when they come from a GPU).
// embedding_rows, add_inplace, mask_rows_inplace, tanh_inplace (F32), contiguous_copy, copy_into
// and zeros_on run where their tensors are: on a CUDA device through kernels/cuda/elementwise.h and convert.h.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tensor.h"
#include "models/model.h"
#include "models/parameters.h"

namespace hfport::models {

// The model's own cache type behind `cache`, for forward_cached: ArgumentError naming the family
// when another model's new_cache made it, or when it holds another batch size than `batch`.
template <typename OwnCache>
OwnCache& own_cache(const std::string& family, DecodeCache& cache, int64_t batch) {
  auto* own = dynamic_cast<OwnCache*>(&cache);
  if (own == nullptr) {
    throw ArgumentError("native " + family + " model: forward_cached needs a cache from this "
                        "model's new_cache");
  }
  if (batch != own->batch()) {
    throw ArgumentError("native " + family + " model: input_ids has batch " +
                        std::to_string(batch) + " but the cache was made for " +
                        std::to_string(own->batch()));
  }
  return *own;
}

// Throws Error naming the family, the head and the heads it has a forward for, unless `head` (the
// head the load selected, "" for the base model) is one of `supported`.
void require_head(const std::string& family, const std::string& head,
                  const std::vector<std::string>& supported);

// input_ids [batch, seq] of I64 or I32 with every id in [0, vocab_size) and seq >= 1, as a
// contiguous I64 copy. Throws ArgumentError naming the family, the bad id and its position.
Tensor checked_token_ids(const std::string& family, const Tensor& input_ids, int64_t vocab_size);

// token_type_ids (undefined: none, every token has type 0) of shape `ids_shape`, I64 or I32, each
// in [0, type_vocab_size): a contiguous I64 copy on the host, or undefined when none was given.
Tensor checked_token_type_ids(const std::string& family, const Tensor& token_type_ids,
                              const Shape& ids_shape, int64_t type_vocab_size);

// attention_mask (undefined: none) of shape `ids_shape`, any integer or bool dtype, 1 = token,
// 0 = padding: a contiguous U8 copy of 0/1, or undefined when none was given.
Tensor checked_attention_mask(const std::string& family, const Tensor& attention_mask,
                              const Shape& ids_shape);

// out[b, s, :] = table[ids[b, s], :] on the table's device; table [rows, hidden] contiguous, any
// dtype (rows are copied as bytes), ids contiguous I64 on the host, already checked.
Tensor embedding_rows(const Tensor& table, const Tensor& ids);

// a += b elementwise; both contiguous F32 of one shape.
void add_inplace(const Tensor& a, const Tensor& b);
// x[b, s, :] *= mask[b, s] for x [batch, seq, hidden] and mask U8 [batch, seq] (transformers'
// apply_mask_to_padding_states: padded positions become zeros). The mask is best already on x's
// device; a host mask for a CUDA x is uploaded on each call.
void mask_rows_inplace(const Tensor& x, const Tensor& mask);
void tanh_inplace(const Tensor& x);

// Moves every defined tensor in `tensors` to `device` (contiguous there), in place, in one upload
// (core/cuda_upload.h); nothing to do for the CPU. A tensor that is another's own view (a tied
// head: the embedding's tensor under a second name) is moved once and stays shared on the device.
void move_parameters(const std::vector<Tensor*>& tensors, const Device& device);

// Part `which` of `parts` equal slices of a fused projection's output ([batch, seq, parts * hidden],
// contiguous F32: q, k and v side by side) as a strided [batch, seq, heads, hidden / heads] view
// into the same storage: attention reads q, k and v where the projection wrote them, no copies.
Tensor fused_projection_part(const Tensor& fused, int64_t parts, int64_t which, int64_t heads);

// A contiguous copy of `t` on t's device.
Tensor contiguous_copy(const Tensor& t);
// dst = src (one shape and dtype, one device). On the host dst must be contiguous; on a GPU it may
// be any non-aliasing view (a cache slot, a state column).
void copy_into(const Tensor& src, const Tensor& dst);
// Zeros of `dtype` and `shape` on `device`.
Tensor zeros_on(DType dtype, const Shape& shape, const Device& device);

// The parameters a model computes with, all F32: a checkpoint loaded in another dtype is widened
// once here (its values keep that dtype's rounding; the arithmetic is F32 either way).
Parameters f32_parameters(const std::string& family,
                          std::vector<std::pair<std::string, Tensor>> state);

// A config.json field the spec's defaults have already filled; ConfigError naming the family and
// the field when it is absent or not of the expected kind.
int64_t config_int(const std::string& family, const nlohmann::json& config, const char* key);
double config_number(const std::string& family, const nlohmann::json& config, const char* key,
                     double fallback);
bool config_bool(const std::string& family, const nlohmann::json& config, const char* key,
                 bool fallback);

}  // namespace hfport::models
