// The safetensors header, validated in one function.
//
// A safetensors file is: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then a
// data buffer. The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end)} with
// offsets relative to the data buffer, plus an optional "__metadata__" map of strings to strings.
// `parse_safetensors_header` enforces every rule in DESIGN.md ("the safetensors rules the reader
// enforces") and throws the HeaderError subclass for the first rule broken; everything after it
// may trust the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace hfport {

inline constexpr uint64_t kMaxHeaderSize = 100'000'000;  // 100 MB, as safetensors limits it

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0;  // [begin, end) within the data buffer
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t header_size = 0;                  // N
  std::vector<TensorInfo> tensors;           // sorted by name
  std::map<std::string, std::string> metadata;
  uint64_t data_offset() const { return 8 + header_size; }
};

// N, read from the first 8 bytes of `file` (the caller has checked there are 8).
uint64_t safetensors_header_length(const std::byte* file);

// Whether the file's first bytes can start a safetensors file: 8 length bytes N with
// 1 <= N <= file_size - 8, then the header's opening '{'. Says nothing of the rest.
bool has_safetensors_start(const std::byte* file, size_t file_size);

// `file` holds the whole file's `file_size` bytes; `path` only names it in errors.
SafetensorsHeader parse_safetensors_header(const std::byte* file, size_t file_size,
                                           const std::string& path);

}  // namespace hfport
