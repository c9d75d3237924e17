// The task heads of BERT, RoBERTa and ALBERT, read from their native names (docs/names.md), and
// the pooler BERT and ALBERT put under the sequence classifier. Dropout is the identity at
// inference, so none appears.
//
//   masked_lm                logits [batch, seq, vocab] =
//                              mlm.decoder(mlm.norm(act(mlm.dense(h))))    (+ mlm.decoder.bias)
//                            mlm.decoder.weight is the word embedding table when tied; ALBERT's
//                            dense maps hidden -> embedding_size and the decoder reads that width
//   sequence_classification  logits [batch, num_labels]:
//                              BERT, ALBERT: cls.out(pooled), pooled = tanh(pooler(h[:, 0]))
//                              RoBERTa:      cls.out(tanh(cls.dense(h[:, 0])))   (no pooler)
//   token_classification     logits [batch, seq, num_labels] = cls.out(h)
#pragma once

#include <string>

#include "core/tensor.h"
#include "models/parameters.h"
#include "ops/activation.h"

namespace hfport::models {

enum class EncoderHead { Base, MaskedLm, SequenceClassification, TokenClassification };

// The head the load selected ("" for the base model) as an EncoderHead; require_head's error,
// naming the family and the heads it runs, for any other.
EncoderHead encoder_head(const std::string& family, const std::string& head);

// h[:, 0] of [batch, seq, width], contiguous [batch, width].
Tensor first_token(const Tensor& h);

// tanh(pooler(h[:, 0])) when the checkpoint has `pooler.weight` (it is optional), else undefined.
Tensor pooled_first_token(const Parameters& params, const Tensor& h);

struct MaskedLmHead {
  Tensor dense_w, dense_b, norm_w, norm_b, decoder_w, decoder_b;
  GeluApproximation act = GeluApproximation::None;
  double eps = 1e-12;

  static MaskedLmHead from(const Parameters& params, GeluApproximation act, double eps);
  Tensor forward(const Tensor& h) const;  // [batch, seq, hidden] -> [batch, seq, vocab]
};

struct ClassifierHead {
  Tensor dense_w, dense_b;  // RoBERTa's sequence head only; undefined otherwise
  Tensor out_w, out_b;

  // cls.out, and cls.dense when `with_dense`.
  static ClassifierHead from(const Parameters& params, bool with_dense);
  // [batch, width] -> [batch, num_labels]: cls.out(x), or cls.out(tanh(cls.dense(x))).
  Tensor forward_sequence(const Tensor& x) const;
  // [batch, seq, hidden] -> [batch, seq, num_labels].
  Tensor forward_tokens(const Tensor& h) const;
};

}  // namespace hfport::models
