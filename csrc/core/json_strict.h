// Strict JSON for untrusted text (safetensors headers, index.json, config.json): the text must be
// valid UTF-8, parse as JSON, nest no deeper than kMaxJsonDepth, and no object may repeat a key.
// nlohmann::json alone would keep the last of two duplicate keys; a header whose tensors can be
// read two ways is refused instead. Callers turn a JsonProblem into their own typed error.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace hfport {

inline constexpr int kMaxJsonDepth = 64;

struct JsonProblem {
  enum class Kind { Encoding, Syntax, DuplicateKey };
  Kind kind;
  std::string detail;  // "invalid UTF-8 at byte 17", "duplicate key 'a.weight'", parser message
};

struct StrictJson {
  nlohmann::json value;
  std::optional<JsonProblem> problem;  // set when the text was refused; `value` is then null
};

StrictJson parse_json_strict(std::string_view text);

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points
// over U+10FFFF are invalid), or nullopt when the text is valid.
std::optional<size_t> find_invalid_utf8(std::string_view text);

}  // namespace hfport
