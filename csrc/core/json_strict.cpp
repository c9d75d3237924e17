#include "core/json_strict.h"

#include <cstring>
#include <utility>

namespace hfport {

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      // Headers are almost all ASCII: skip eight such bytes at a time.
      uint64_t word;
      while (i + 8 <= n && (std::memcpy(&word, s + i, 8), (word & 0x8080808080808080) == 0)) i += 8;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::nullopt;
}

std::optional<JsonProblem> check_json_text(std::string_view text) {
  if (auto bad = find_invalid_utf8(text)) {
    return JsonProblem{JsonProblem::Kind::Encoding,
                       "invalid UTF-8 at byte " + std::to_string(*bad)};
  }
  // nlohmann skips a leading byte order mark and takes a NUL byte for the end of the text, so
  // `{...}\0anything` would parse. JSON has neither (a NUL in a string must be escaped), and
  // the reference reader refuses both.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return JsonProblem{JsonProblem::Kind::Syntax,
                       "a UTF-8 byte order mark at byte 0, which JSON does not allow"};
  }
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return JsonProblem{JsonProblem::Kind::Syntax,
                       "a NUL byte at byte " + std::to_string(nul) + ", which JSON does not allow"};
  }
  return std::nullopt;
}

JsonProblem duplicate_key(const std::string& key) {
  return {JsonProblem::Kind::DuplicateKey, "duplicate key '" + key + "'"};
}

void StrictDomBuilder::start(nlohmann::json* target, size_t depth) {
  target_ = target;
  depth_ = depth;
}

void StrictDomBuilder::resume_array(nlohmann::json* array, size_t depth) {
  open_.push_back(array);
  depth_ = depth;
}

// An event with d containers open around it is refused when d > kMaxJsonDepth, the depth a
// nlohmann parser callback reports for it: 65 nested empty containers pass, and a value inside
// the 65th or a 66th container does not.
bool StrictDomBuilder::too_deep() {
  if (depth_ + open_.size() <= static_cast<size_t>(kMaxJsonDepth)) return false;
  problem_ = JsonProblem{JsonProblem::Kind::Syntax,
                         "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
  return true;
}

nlohmann::json* StrictDomBuilder::place(nlohmann::json&& value) {
  if (open_.empty()) {
    nlohmann::json* slot = std::exchange(target_, nullptr);
    *slot = std::move(value);
    return slot;
  }
  nlohmann::json& parent = *open_.back();
  if (parent.is_array()) {
    parent.push_back(std::move(value));
    return &parent.back();
  }
  *member_ = std::move(value);
  return member_;
}

bool StrictDomBuilder::add(nlohmann::json&& value) {
  if (too_deep()) return false;
  place(std::move(value));
  return true;
}

bool StrictDomBuilder::open(nlohmann::json&& container) {
  if (too_deep()) return false;
  open_.push_back(place(std::move(container)));
  return true;
}

bool StrictDomBuilder::close() {
  open_.pop_back();
  return true;
}

bool StrictDomBuilder::key(std::string& key) {
  if (too_deep()) return false;
  auto [member, added] = open_.back()->get_ref<nlohmann::json::object_t&>().try_emplace(key);
  if (!added) {
    problem_ = duplicate_key(key);
    return false;
  }
  member_ = &member->second;
  return true;
}

bool StrictDomBuilder::parse_error(size_t, const std::string&,
                                   const nlohmann::json::exception& error) {
  problem_ = JsonProblem{JsonProblem::Kind::Syntax, error.what()};
  return false;
}

StrictJson parse_json_strict(std::string_view text) {
  StrictJson parsed;
  parsed.problem = check_json_text(text);
  if (parsed.problem) return parsed;
  StrictDomBuilder builder(parsed.problem);
  builder.start(&parsed.value, 0);
  if (!nlohmann::json::sax_parse(text.begin(), text.end(), &builder)) parsed.value = nullptr;
  return parsed;
}

}  // namespace hfport
