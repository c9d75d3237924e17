// Strict JSON for untrusted text (safetensors headers, index.json, config.json): the text must be
// valid UTF-8, parse as JSON, nest no deeper than kMaxJsonDepth, and no object may repeat a key.
// nlohmann::json alone would keep the last of two duplicate keys; a header whose tensors can be
// read two ways is refused instead. Callers turn a JsonProblem into their own typed error.
//
// The rules live in two pieces that every reader shares: `check_json_text` (encoding, BOM, NUL;
// run before parsing) and `StrictDomBuilder` (a nlohmann SAX handler that builds a value while
// enforcing depth and unique keys). `parse_json_strict` is the two together. The safetensors
// header reader runs its own SAX handler on the hot path and hands every value it does not read
// itself to a StrictDomBuilder, so both refuse the same texts with the same messages.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// The checks made on the raw text before parsing it: valid UTF-8, no byte order mark, no NUL.
std::optional<JsonProblem> check_json_text(std::string_view text);

JsonProblem duplicate_key(const std::string& key);

// A nlohmann SAX handler that builds one JSON value, refusing a key repeated in an object and
// nesting deeper than kMaxJsonDepth. Every event returns false when the text is refused, after
// writing why into the `problem` given at construction (parse errors land there too).
class StrictDomBuilder {
 public:
  explicit StrictDomBuilder(std::optional<JsonProblem>& problem) : problem_(problem) {}

  // The next value read goes into `*target`; `depth` containers are already open around it.
  void start(nlohmann::json* target, size_t depth);
  // Go on building `*array`, a partly read array whose closing bracket is still to come.
  void resume_array(nlohmann::json* array, size_t depth);
  // True from start() until the value is complete.
  bool active() const { return target_ != nullptr || !open_.empty(); }

  bool null() { return add(nullptr); }
  bool boolean(bool value) { return add(value); }
  bool number_integer(int64_t value) { return add(value); }
  bool number_unsigned(uint64_t value) { return add(value); }
  bool number_float(double value, const std::string&) { return add(value); }
  bool string(std::string& value) { return add(value); }
  bool binary(nlohmann::json::binary_t& value) { return add(std::move(value)); }
  bool start_object(size_t) { return open(nlohmann::json::object()); }
  bool start_array(size_t) { return open(nlohmann::json::array()); }
  bool key(std::string& key);
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(size_t, const std::string&, const nlohmann::json::exception& error);

 private:
  bool too_deep();
  nlohmann::json* place(nlohmann::json&& value);
  bool add(nlohmann::json&& value);
  bool open(nlohmann::json&& container);
  bool close();

  std::optional<JsonProblem>& problem_;
  nlohmann::json* target_ = nullptr;    // where the value goes, until it is placed
  std::vector<nlohmann::json*> open_;   // containers being built, innermost last
  nlohmann::json* member_ = nullptr;    // the slot a key made in the innermost object
  size_t depth_ = 0;                    // containers open around the value
};

}  // namespace hfport
