// FamilySpec: one family's mapping table, read from JSON (the format is docs/families.md), and
// the registry of built-in families compiled in from csrc/mapping/families/*.json.
//
// Specs are untrusted input (users write their own), so `parse_family_spec` is the one validation
// path: unknown fields, wrong types, bad expressions, a `split` without sizes or a capture that no
// range defines all fail here with a SpecError naming the spec and the rule. Everything after it
// may trust a FamilySpec.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mapping/expression.h"

namespace hfport {

struct SpecTarget {
  std::string name;                 // native name pattern, with {captures}
  std::vector<Expression> shape;    // expected shape, one expression per dim
};

enum class CombineOp { None, Concat, WeightNorm };

struct SpecRule {
  std::vector<SpecTarget> to;       // one target, or one per piece of a split
  std::vector<std::string> from;    // checkpoint name patterns
  CombineOp combine = CombineOp::None;
  int64_t combine_dim = 0;          // concat dim, or the dim weight_norm keeps
  std::vector<int64_t> transpose;   // a permutation, empty for none
  std::vector<Expression> reshape;  // empty for none
  std::optional<int64_t> squeeze;
  bool neg_exp = false;
  bool split = false;
  int64_t split_dim = 0;
  std::vector<Expression> split_sizes;
  bool optional = false;
  Expression when;                  // empty: always
  std::string tied_to;              // native name pattern, empty: not tied
  Expression tied_when;
  std::vector<std::string> captures;  // the captures its names use, in range order
  std::string where;                // "spec 'llama', rule 3 (blk.{i}.attn_qkv.weight)" for messages

  // The op names it applies, in order ("concat", "transpose", ...), for reports; "rename" if none.
  std::vector<std::string> op_names() const;
};

// A task head: the rules for the tensors that transformers' task classes (BertForMaskedLM,
// LlamaForSequenceClassification, ...) add around the base model. The architectures in
// config.json choose it; its source names are never prefixed or stripped.
struct SpecHead {
  std::string name;                        // "causal_lm", "masked_lm", "sequence_classification"
  std::vector<std::string> architectures;  // config.json architectures that carry this head
  std::vector<SpecRule> rules;
  std::vector<std::string> ignore;
};

// A condition a config must meet for the spec to describe it ("num_hidden_groups == 1").
struct SpecRequirement {
  Expression condition;
  std::string where;
};

struct FamilySpec {
  std::string family;
  std::string source;
  std::vector<std::string> match_model_types;
  std::vector<std::string> match_architectures;
  std::vector<std::pair<std::string, Expression>> config_defaults;
  // config_defaults written {"if_absent": expr}: applied only when the field is absent, a null
  // kept as transformers' None (Wav2Vec2-BERT's position_embeddings_type: no positions).
  std::set<std::string> defaults_keeping_null;
  std::vector<std::pair<std::string, Expression>> ranges;
  std::vector<SpecRule> rules;
  std::vector<std::string> ignore;
  // transformers' base_model_prefix ("model.", "transformer."): source names starting with it are
  // the base model's, and a checkpoint saved from the base model has them without it.
  std::string base_prefix;
  std::vector<SpecHead> heads;
  std::string default_head;          // the head when config.json names no architecture; "" none
  std::vector<SpecRequirement> requirements;
  nlohmann::ordered_json document;  // the spec as written (after `extends` is resolved)
};

// `origin` names the spec in messages ("built-in family 'llama'", "spec file x.json"). JSON
// objects keep their order: defaults and ranges are evaluated as written.
FamilySpec parse_family_spec_text(const std::string& json_text, const std::string& origin);
FamilySpec parse_family_spec(const nlohmann::ordered_json& document, const std::string& origin);

// config.json's `architectures` strings, in order (none when the field is absent or not a list).
std::vector<std::string> config_architectures(const nlohmann::json& config);

// The head whose architectures name one of config.json's `architectures` (in their order), else
// the spec's default_head when config.json names none; null for the base model alone.
const SpecHead* select_head(const FamilySpec& spec, const nlohmann::json& config);

// "" when the spec was chosen by its `match`, or names no match; else a warning naming what
// config.json says and what the spec matches (a family forced on a checkpoint of another).
std::string family_mismatch_warning(const FamilySpec& spec, const nlohmann::json& config);

// ConfigError naming the first requirement (`requires`) that config.json does not meet, with the
// values of the fields it reads.
void check_requirements(const FamilySpec& spec, const nlohmann::json& config);

// Built-in families, by name (the JSON file's stem), sorted.
std::vector<std::string> builtin_family_names();
const FamilySpec& builtin_family(const std::string& name);  // SpecError listing the names
// The spec as JSON text, with `extends` resolved (the base's rules merged in).
std::string builtin_family_json(const std::string& name);

// The built-in family whose `match` names config.json's model_type (or, failing that, one of its
// architectures). UnknownFamilyError lists every family and what it matches.
const FamilySpec& select_family(const nlohmann::json& config, const std::string& config_origin);

// config.json with the spec's config_defaults applied (a field absent, null or "auto"; only absent
// for those in defaults_keeping_null), after
// `num_labels`, which transformers derives from id2label and does not write, is derived the same way.
nlohmann::json apply_config_defaults(const FamilySpec& spec, const nlohmann::json& config);

}  // namespace hfport
