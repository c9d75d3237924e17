// The task heads of BERT-like encoders. See encoder_heads.h.
#include "models/encoder_heads.h"

#include "models/model_inputs.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace hfport::models {

EncoderHead encoder_head(const std::string& family, const std::string& head) {
  require_head(family, head,
               {"", "masked_lm", "sequence_classification", "token_classification"});
  if (head == "masked_lm") return EncoderHead::MaskedLm;
  if (head == "sequence_classification") return EncoderHead::SequenceClassification;
  if (head == "token_classification") return EncoderHead::TokenClassification;
  return EncoderHead::Base;
}

Tensor first_token(const Tensor& h) { return h.select(1, 0).contiguous(); }

Tensor pooled_first_token(const Parameters& params, const Tensor& h) {
  const Tensor* weight = params.find("pooler.weight");
  if (weight == nullptr) return Tensor();
  const Tensor* bias = params.find("pooler.bias");
  Tensor pooled = linear(first_token(h), *weight, bias != nullptr ? *bias : Tensor());
  tanh_inplace(pooled);
  return pooled;
}

MaskedLmHead MaskedLmHead::from(const Parameters& params, GeluApproximation act, double eps) {
  MaskedLmHead m;
  m.dense_w = params.get("mlm.dense.weight");
  m.dense_b = params.get("mlm.dense.bias");
  m.norm_w = params.get("mlm.norm.weight");
  m.norm_b = params.get("mlm.norm.bias");
  m.decoder_w = params.get("mlm.decoder.weight");
  m.decoder_b = params.get("mlm.decoder.bias");
  m.act = act;
  m.eps = eps;
  return m;
}

Tensor MaskedLmHead::forward(const Tensor& h) const {
  const Tensor transformed = layer_norm(gelu(linear(h, dense_w, dense_b), act), norm_w, norm_b, eps);
  return linear(transformed, decoder_w, decoder_b);
}

ClassifierHead ClassifierHead::from(const Parameters& params, bool with_dense) {
  ClassifierHead c;
  if (with_dense) {
    c.dense_w = params.get("cls.dense.weight");
    c.dense_b = params.get("cls.dense.bias");
  }
  c.out_w = params.get("cls.out.weight");
  c.out_b = params.get("cls.out.bias");
  return c;
}

Tensor ClassifierHead::forward_sequence(const Tensor& x) const {
  if (!dense_w.defined()) return linear(x, out_w, out_b);
  Tensor dense = linear(x, dense_w, dense_b);
  tanh_inplace(dense);
  return linear(dense, out_w, out_b);
}

Tensor ClassifierHead::forward_tokens(const Tensor& h) const { return linear(h, out_w, out_b); }

}  // namespace hfport::models
