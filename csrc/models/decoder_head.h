// The heads the decoder families (the llama family, GPT-2) put on their final hidden states, as
// transformers' task classes do:
//   ""                        the base model (LlamaModel, GPT2Model): no logits, the hidden state
//   causal_lm                 logits = h W_out^T over the vocabulary, at every position
//   sequence_classification   transformers' GenericForSequenceClassification / GPT-2's: the
//                             scores of each row's last token that is not pad_token_id (the
//                             rightmost one, so left and right padding both work), [batch, labels];
//                             with no pad_token_id in config.json the last position, and a batch
//                             of more than one is refused as transformers refuses it
//   token_classification      scores at every position, [batch, seq, labels]
// The parameters are the spec's head names: output.weight; cls.out.weight (+ cls.out.bias).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/model.h"
#include "models/parameters.h"

namespace hfport::models {

class DecoderHead {
 public:
  DecoderHead() = default;  // the base model's: no parameters, no logits
  // Reads the head's parameters from `params`; Error for a head this class has no forward for.
  DecoderHead(const std::string& family, const std::string& head, const Parameters& params,
              const nlohmann::json& config);

  const std::string& name() const { return head_; }
  bool is_causal_lm() const { return head_ == "causal_lm"; }
  // Its parameters, for a model that moves its parameters to a device.
  std::vector<Tensor*> tensors() { return {&weight_, &bias_}; }

  // Fills out.last_hidden_state and out.logits (none for the base model) from the final hidden
  // states [batch, seq, hidden] (after the final norm) and the checked host ids [batch, seq].
  void apply(const Tensor& hidden, const Tensor& ids, ModelOutput& out) const;

  // The language-model logits [batch, seq, vocab]; Error unless this is the causal_lm head (a
  // model decodes only with it).
  Tensor lm_logits(const Tensor& hidden) const;

 private:
  std::string family_, head_;
  Tensor weight_, bias_;
  std::optional<int64_t> pad_token_id_;
};

// For each row of `ids` [batch, seq] (contiguous I64 on the host), the position transformers'
// sequence classifiers pool at: the rightmost token that is not `pad_token_id` (0 when every
// token is padding, as transformers' argmax gives), or seq - 1 without a pad token, which
// transformers allows only for a batch of one (ArgumentError otherwise).
std::vector<int64_t> last_non_pad_positions(const std::string& family, const Tensor& ids,
                                            std::optional<int64_t> pad_token_id);

}  // namespace hfport::models
