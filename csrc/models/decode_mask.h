// The attention mask of a decoding step (Model::forward_cached) and the positions it implies.
//
// transformers' generate keeps one 2-D attention_mask for the whole sequence, the prompt's (1 =
// token, 0 = padding) followed by a 1 for every generated token, and passes all of it at every
// step: [batch, cached + new]. Its position_ids come from the same mask
// (GenerationMixin._prepare_position_ids_for_generation): cumsum(mask) - 1 along each row, 0 at
// padding; each step then adds last position + 1 (_update_model_kwargs_for_generation). The
// LLaMA family and GPT-2 take position_ids, so a left-padded row's first token sits at position 0
// whatever the padding before it. cumsum(mask) - 1 over the grown mask is that same last + 1
// as long as the column before each step is a token, which holds for every step of generate
// (it refuses a prompt whose last column is padding, models/generate.h), so one formula covers
// the prompt and every step here.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace hfport::models {

// `attention_mask` for `new_tokens` tokens after `cached` ones: undefined (none), or [batch,
// cached + new_tokens] of 0/1 in any integer or bool dtype, on either device. Returns a contiguous
// U8 copy on the host, or undefined. ArgumentError naming the family, the expected and the given
// shape.
Tensor checked_decode_mask(const std::string& family, const Tensor& attention_mask, int64_t batch,
                           int64_t cached, int64_t new_tokens);

// The positions [batch, new_tokens] I64 of the last `new_tokens` columns of a checked mask
// [batch, cached + new_tokens]: cumsum(mask) - 1 along the row, 0 where the mask is 0.
Tensor decode_positions(const Tensor& mask, int64_t new_tokens);

// Whether every entry of the last `columns` columns of a checked mask is 1.
bool last_columns_all_tokens(const Tensor& mask, int64_t columns);

}  // namespace hfport::models
