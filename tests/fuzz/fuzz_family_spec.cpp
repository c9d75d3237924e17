// Fuzzes the family spec reader (parse_family_spec_text, mapping/family_spec.h) and the config
// expression language (Expression::parse and evaluate, mapping/expression.h).
//
// The input is SOURCE, or SOURCE \0 CONFIG. SOURCE is read both as a spec's JSON text and, when it
// is valid UTF-8, as one expression; CONFIG is a config.json text ({} when absent or not JSON).
// (Expressions only ever come from JSON or Python strings, both UTF-8; fed other bytes, the
// evaluator's messages, which dump string values, would fail in nlohmann instead.) A spec that
// parses has its config_defaults applied to CONFIG, as the loader does; an expression that parses
// is evaluated against CONFIG with the captures {i: 1, j: 0}, as a value, an integer and a
// condition. A family file, \0 and a config seed the first path; "depths[i] * 2\0{...}" the second.
//
// A bug is a crash, a sanitizer report (UBSan's signed overflow included: the evaluator promises
// overflow-checked integers), a stack overflow, a hang past -timeout, or an exception that is not
// an hfport::Error. Specs are untrusted input (users write their own), so every rule they break
// must come back as a SpecError or ExpressionError.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_strict.h"
#include "mapping/expression.h"
#include "mapping/family_spec.h"

namespace {

void fuzz_spec(const std::string& source, const nlohmann::json& config) {
  try {
    const hfport::FamilySpec spec = hfport::parse_family_spec_text(source, "fuzz");
    for (const hfport::SpecRule& rule : spec.rules) rule.op_names();
    hfport::apply_config_defaults(spec, config);
  } catch (const hfport::Error&) {
  }
}

void fuzz_expression(const std::string& source, const nlohmann::json& config) {
  if (hfport::find_invalid_utf8(source)) return;
  hfport::Expression expression;
  try {
    expression = hfport::Expression::parse(source, "fuzz");
  } catch (const hfport::Error&) {
    return;
  }
  const hfport::Captures captures = {{"i", 1}, {"j", 0}};
  // Each form is tried even when another fails: they convert the value differently.
  try {
    expression.evaluate(config, captures, "fuzz");
  } catch (const hfport::Error&) {
  }
  try {
    expression.evaluate_int(config, captures, "fuzz");
  } catch (const hfport::Error&) {
  }
  try {
    expression.evaluate_bool(config, captures, "fuzz");
  } catch (const hfport::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const auto* separator = static_cast<const char*>(std::memchr(text, '\0', size));
  const std::string source(text, separator ? separator : text + size);
  nlohmann::json config = nlohmann::json::object();
  if (separator) {
    // Without exceptions: a CONFIG that is not JSON is not what this target fuzzes.
    config = nlohmann::json::parse(separator + 1, text + size, nullptr, false);
    if (config.is_discarded()) config = nlohmann::json::object();
  }
  fuzz_spec(source, config);
  fuzz_expression(source, config);
  return 0;
}
