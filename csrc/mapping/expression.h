// Config expressions: the small language family specs use for shapes, split sizes, ranges, `when`
// conditions and config defaults ("(num_attention_heads + 2*num_key_value_heads) * head_dim",
// "depths[i]", "ceil_div(hidden_size, 16)").
//
// An expression is parsed once, when its spec is read (so a syntax error names the spec and the
// rule before any checkpoint is touched), and evaluated per capture binding against config.json.
// Values are JSON values: integers, floats, booleans, strings, lists. Integer arithmetic is exact
// and overflow-checked; `/` is exact division and fails on a remainder, `//` floors like Python.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hfport {

using Captures = std::map<std::string, int64_t>;

struct ExpressionNode;

class Expression {
 public:
  Expression() = default;
  // Throws SpecError naming `where` (the spec and rule) on a syntax error.
  static Expression parse(const std::string& text, const std::string& where);

  const std::string& text() const { return text_; }
  bool empty() const { return root_ == nullptr; }

  // Throws ExpressionError naming the expression and `where` when a field is missing, a type is
  // wrong or arithmetic fails.
  nlohmann::json evaluate(const nlohmann::json& config, const Captures& captures,
                          const std::string& where) const;
  int64_t evaluate_int(const nlohmann::json& config, const Captures& captures,
                       const std::string& where) const;
  bool evaluate_bool(const nlohmann::json& config, const Captures& captures,
                     const std::string& where) const;

  // The config field names the expression reads ("num_key_value_heads", "text_config.hidden_size"),
  // for reports that say where an expected shape came from.
  const std::set<std::string>& fields() const { return fields_; }

 private:
  std::string text_;
  std::shared_ptr<const ExpressionNode> root_;
  std::set<std::string> fields_;
};

}  // namespace hfport
