#include "core/json_strict.h"

#include <unordered_set>
#include <vector>

namespace hfport {

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
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

namespace {

struct Refused {
  JsonProblem problem;
};

}  // namespace

StrictJson parse_json_strict(std::string_view text) {
  if (auto bad = find_invalid_utf8(text)) {
    return {nullptr, JsonProblem{JsonProblem::Kind::Encoding,
                                 "invalid UTF-8 at byte " + std::to_string(*bad)}};
  }
  // nlohmann skips a leading byte order mark and takes a NUL byte for the end of the text, so
  // `{...}\0anything` would parse. JSON has neither (a NUL in a string must be escaped), and
  // the reference reader refuses both.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return {nullptr, JsonProblem{JsonProblem::Kind::Syntax,
                                 "a UTF-8 byte order mark at byte 0, which JSON does not allow"}};
  }
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return {nullptr, JsonProblem{JsonProblem::Kind::Syntax,
                                 "a NUL byte at byte " + std::to_string(nul) +
                                     ", which JSON does not allow"}};
  }
  // One set of seen keys per open object; arrays push nothing.
  std::vector<std::unordered_set<std::string>> open_objects;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (depth > kMaxJsonDepth) {
      throw Refused{{JsonProblem::Kind::Syntax,
                     "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels"}};
    }
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      open_objects.pop_back();
    } else if (event == Event::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) {
        throw Refused{{JsonProblem::Kind::DuplicateKey, "duplicate key '" + key + "'"}};
      }
    }
    return true;
  };
  try {
    return {nlohmann::json::parse(text.begin(), text.end(), on_event), std::nullopt};
  } catch (const Refused& refused) {
    return {nullptr, refused.problem};
  } catch (const nlohmann::json::exception& e) {
    return {nullptr, JsonProblem{JsonProblem::Kind::Syntax, e.what()}};
  }
}

}  // namespace hfport
