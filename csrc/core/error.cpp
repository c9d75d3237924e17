#include "core/error.h"

namespace hfport {

std::string printable(std::string_view text, bool keep_newlines) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool kept = keep_newlines && (c == '\n' || c == '\t');
    if ((c < 0x20 && !kept) || c == 0x7f) {
      out.push_back('\\');
      out.push_back('x');
      out.push_back(kHexDigits[c >> 4]);
      out.push_back(kHexDigits[c & 15]);
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace hfport
