// A decoding step's attention mask and positions; see decode_mask.h.
#include "models/decode_mask.h"

#include "core/error.h"
#include "models/model_inputs.h"

namespace hfport::models {

Tensor checked_decode_mask(const std::string& family, const Tensor& attention_mask, int64_t batch,
                           int64_t cached, int64_t new_tokens) {
  if (!attention_mask.defined()) return Tensor();
  const Shape expected = {batch, cached + new_tokens};
  if (attention_mask.shape() != expected) {
    throw ArgumentError("native " + family + " model: the attention_mask of a cached step covers "
                        "the " + std::to_string(cached) + " cached tokens and the " +
                        std::to_string(new_tokens) + " new ones, " + shape_to_string(expected) +
                        ", got " + shape_to_string(attention_mask.shape()));
  }
  return checked_attention_mask(family, attention_mask, expected);
}

Tensor decode_positions(const Tensor& mask, int64_t new_tokens) {
  const int64_t batch = mask.shape()[0], total = mask.shape()[1];
  Tensor positions = Tensor::empty(DType::I64, {batch, new_tokens});
  const uint8_t* keep = mask.data_as<uint8_t>();
  int64_t* out = positions.data_as<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t tokens = 0;
    for (int64_t j = 0; j < total; ++j) {
      const bool token = keep[b * total + j] != 0;
      tokens += token ? 1 : 0;
      const int64_t column = j - (total - new_tokens);
      if (column >= 0) out[b * new_tokens + column] = token ? tokens - 1 : 0;
    }
  }
  return positions;
}

bool last_columns_all_tokens(const Tensor& mask, int64_t columns) {
  const int64_t batch = mask.shape()[0], total = mask.shape()[1];
  const uint8_t* keep = mask.data_as<uint8_t>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = total - columns; j < total; ++j) {
      if (keep[b * total + j] == 0) return false;
    }
  }
  return true;
}

}  // namespace hfport::models
