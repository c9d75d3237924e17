// Files for the C++ tests: a temporary folder that removes itself, and a safetensors writer written
// from the format description (8-byte little-endian header length, JSON header, data buffer), not
// from hfport's reader, so a reader bug cannot hide behind a writer sharing its code.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hfport_test {

namespace fs = std::filesystem;

using Bytes = std::vector<uint8_t>;

// A fresh folder under the system temp dir, removed (with everything in it) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "hfport-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline void write_file(const fs::path& path, const void* data, size_t size) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}
inline void write_file(const fs::path& path, const Bytes& bytes) {
  write_file(path, bytes.data(), bytes.size());
}
inline void write_file(const fs::path& path, const std::string& text) {
  write_file(path, text.data(), text.size());
}

inline Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The raw bytes of any value array (little-endian host assumed, as safetensors stores).
template <typename T>
Bytes bytes_of(const std::vector<T>& values) {
  Bytes out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A JSON string literal: quotes, backslashes and control characters escaped, other bytes
// (UTF-8 included) copied.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

struct TensorBytes {
  std::string name;
  std::string dtype;  // the safetensors name, written as given (so tests can write bad ones)
  std::vector<int64_t> shape;
  Bytes data;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

// The JSON header for `tensors` laid out back to back in the order given.
inline std::string safetensors_header_json(const std::vector<TensorBytes>& tensors,
                                           const Metadata& metadata = {}) {
  std::string json = "{";
  const char* separator = "";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    for (const auto& [key, value] : metadata) {
      json += separator;
      json += json_string(key);
      json += ':';
      json += json_string(value);
      separator = ",";
    }
    json += '}';
  }
  uint64_t offset = 0;
  for (const TensorBytes& t : tensors) {
    json += metadata.empty() && &t == &tensors.front() ? "" : ",";
    json += json_string(t.name);
    json += ":{\"dtype\":";
    json += json_string(t.dtype);
    json += ",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) json += ',';
      json += std::to_string(t.shape[i]);
    }
    json += "],\"data_offsets\":[";
    json += std::to_string(offset);
    json += ',';
    json += std::to_string(offset + t.data.size());
    json += "]}";
    offset += t.data.size();
  }
  return json + "}";
}

// 8-byte little-endian length, the header text as given, then the data buffer.
inline Bytes safetensors_file_bytes(const std::string& header, const Bytes& data) {
  Bytes out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

// A valid file, header padded with spaces to a multiple of `align` bytes as safetensors pads it.
inline Bytes safetensors_bytes(const std::vector<TensorBytes>& tensors,
                               const Metadata& metadata = {}, size_t align = 8) {
  std::string header = safetensors_header_json(tensors, metadata);
  while (align > 1 && header.size() % align != 0) header += ' ';
  Bytes data;
  for (const TensorBytes& t : tensors) data.insert(data.end(), t.data.begin(), t.data.end());
  return safetensors_file_bytes(header, data);
}

inline void write_safetensors(const fs::path& path, const std::vector<TensorBytes>& tensors,
                              const Metadata& metadata = {}) {
  write_file(path, safetensors_bytes(tensors, metadata));
}

}  // namespace hfport_test
