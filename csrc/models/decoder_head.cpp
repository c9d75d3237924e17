// The decoder families' heads. See decoder_head.h.
#include "models/decoder_head.h"

#include "core/error.h"
#include "models/model_inputs.h"
#include "ops/linear.h"

namespace hfport::models {

DecoderHead::DecoderHead(const std::string& family, const std::string& head,
                         const Parameters& params, const nlohmann::json& config)
    : family_(family), head_(head) {
  require_head(family, head, {"", "causal_lm", "sequence_classification", "token_classification"});
  if (head == "causal_lm") {
    weight_ = params.get("output.weight");
  } else if (!head.empty()) {
    weight_ = params.get("cls.out.weight");
    if (const Tensor* bias = params.find("cls.out.bias")) bias_ = *bias;
  }
  if (config.contains("pad_token_id") && config["pad_token_id"].is_number_integer()) {
    pad_token_id_ = config["pad_token_id"].get<int64_t>();
  }
}

std::vector<int64_t> last_non_pad_positions(const std::string& family, const Tensor& ids,
                                            std::optional<int64_t> pad_token_id) {
  const int64_t batch = ids.shape()[0], seq = ids.shape()[1];
  if (!pad_token_id && batch != 1) {
    throw ArgumentError("native " + family + " sequence classifier: config.json has no "
                        "pad_token_id, so the last token of each row cannot be told from "
                        "padding; pass one row at a time (transformers refuses a batch of " +
                        std::to_string(batch) + " too)");
  }
  std::vector<int64_t> positions(static_cast<size_t>(batch), seq - 1);
  if (!pad_token_id) return positions;
  const int64_t* data = ids.data_as<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t last = 0;
    for (int64_t s = 0; s < seq; ++s) {
      if (data[b * seq + s] != *pad_token_id) last = s;
    }
    positions[static_cast<size_t>(b)] = last;
  }
  return positions;
}

void DecoderHead::apply(const Tensor& hidden, const Tensor& ids, ModelOutput& out) const {
  out.last_hidden_state = hidden;
  if (head_.empty()) return;
  if (head_ != "sequence_classification") {
    out.logits = linear(hidden, weight_, bias_);
    return;
  }
  const std::vector<int64_t> positions = last_non_pad_positions(family_, ids, pad_token_id_);
  const int64_t batch = hidden.shape()[0], width = hidden.shape()[2];
  Tensor rows = Tensor::empty(hidden.dtype(), {batch, width}, hidden.device());
  for (int64_t b = 0; b < batch; ++b) {
    copy_into(hidden.select(0, b).select(0, positions[static_cast<size_t>(b)]), rows.select(0, b));
  }
  out.logits = linear(rows, weight_, bias_);
}

Tensor DecoderHead::lm_logits(const Tensor& hidden) const {
  if (head_ != "causal_lm") {
    throw Error("native " + family_ + " model: decoding needs the causal_lm head (a " +
                (head_.empty() ? std::string("base model") : "'" + head_ + "' model") +
                " has no vocabulary logits)");
  }
  return linear(hidden, weight_);
}

}  // namespace hfport::models
