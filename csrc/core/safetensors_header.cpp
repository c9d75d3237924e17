#include "core/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/json_strict.h"

namespace hfport {

namespace {

using nlohmann::json;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string byte_range(const TensorInfo& t) {
  std::string range = "[";
  range += std::to_string(t.begin);
  range += ", ";
  range += std::to_string(t.end);
  range += ")";
  return range;
}

std::string json_kind(const json& value) {
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_null()) return "null";
  if (value.is_number_float()) return "a non-integer number";
  // Read an unsigned value as int64 and 2^63 looks negative; only signed values can be.
  if (!value.is_number_unsigned() && value.get<int64_t>() < 0) return "a negative number";
  return "a number";
}

// A JSON value as a non-negative integer that fits int64 (shapes and offsets), or nullopt.
std::optional<uint64_t> as_index(const json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return v;
    return std::nullopt;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<uint64_t>();
  return std::nullopt;
}

std::string known_dtype_names() {
  std::string names;
  for (int i = 0; i < kDTypeCount; ++i) {
    names += (i ? ", " : "") + std::string(dtype_name(static_cast<DType>(i)));
  }
  return names;
}

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& where) {
  if (value.is_null()) return {};  // safetensors reads "__metadata__": null as no metadata
  if (!value.is_object()) {
    throw MetadataError(where + ": __metadata__ must be an object of strings, found " +
                        json_kind(value));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      throw MetadataError(where + ": __metadata__[" + quoted(key) +
                          "] must be a string, found " + json_kind(item));
    }
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

TensorInfo parse_entry(const std::string& name, const json& entry, const std::string& where) {
  const std::string tensor = where + ": tensor " + quoted(name);
  if (!entry.is_object()) {
    throw TensorEntryError(tensor + " must be an object {dtype, shape, data_offsets}, found " +
                           json_kind(entry));
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) {
      throw TensorEntryError(tensor + " has no '" + field + "' field");
    }
  }
  for (const auto& [field, unused] : entry.items()) {
    if (field != "dtype" && field != "shape" && field != "data_offsets") {
      throw TensorEntryError(tensor + " has an unexpected field " + quoted(field) +
                             " (expected only dtype, shape, data_offsets)");
    }
  }

  TensorInfo info;
  info.name = name;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) {
    throw DTypeError(tensor + ": dtype must be a string, found " + json_kind(dtype));
  }
  const auto parsed_dtype = dtype_from_name(dtype.get<std::string>());
  if (!parsed_dtype) {
    throw DTypeError(tensor + " has unknown dtype " + quoted(dtype.get<std::string>()) +
                     "; known dtypes: " + known_dtype_names());
  }
  info.dtype = *parsed_dtype;

  const json& shape = entry["shape"];
  if (!shape.is_array()) {
    throw ShapeError(tensor + ": shape must be an array of non-negative integers, found " +
                     json_kind(shape));
  }
  // Overflow checks on the product of max(dim, 1), as torch checks strides: a shape like
  // [2^40, 2^40] must not wrap, and neither may [0, 2^62, 2^62], whose strides would.
  const uint64_t item = dtype_size(info.dtype);
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / item;
  uint64_t extent = 1;
  bool zero_dim = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const auto dim = as_index(shape[i]);
    if (!dim) {
      throw ShapeError(tensor + ": shape[" + std::to_string(i) + "] must be a non-negative "
                       "integer below 2^63, found " + json_kind(shape[i]) + " " + shape[i].dump());
    }
    info.shape.push_back(static_cast<int64_t>(*dim));
    zero_dim = zero_dim || *dim == 0;
    const uint64_t factor = std::max<uint64_t>(*dim, 1);
    if (extent > limit / factor) {
      throw ShapeError(tensor + ": shape " + shape.dump() + " overflows: its byte size (or a "
                       "stride) does not fit in 64 bits");
    }
    extent *= factor;
  }
  const uint64_t numel = zero_dim ? 0 : extent;
  const uint64_t nbytes = numel * item;

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    throw OffsetsError(tensor + ": data_offsets must be [begin, end], found " + offsets.dump());
  }
  const auto begin = as_index(offsets[0]);
  const auto end = as_index(offsets[1]);
  if (!begin || !end) {
    throw OffsetsError(tensor + ": data_offsets must be non-negative integers, found " +
                       offsets.dump());
  }
  if (*begin > *end) {
    throw OffsetsError(tensor + ": data_offsets " + offsets.dump() + " end before they begin");
  }
  if (*end - *begin != nbytes) {
    throw OffsetsError(tensor + " has shape " + shape_to_string(info.shape) + " and dtype " +
                       std::string(dtype_name(info.dtype)) + ", so " + std::to_string(nbytes) +
                       " bytes, but data_offsets " + offsets.dump() + " span " +
                       std::to_string(*end - *begin) + " bytes");
  }
  info.begin = *begin;
  info.end = *end;
  return info;
}

// Offsets must tile the data buffer exactly: start at 0, no gap, no overlap, end at its end.
void check_layout(std::vector<TensorInfo> tensors, uint64_t data_size, uint64_t header_size,
                  size_t file_size, const std::string& where) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin != expected) {
      if (previous == nullptr) {
        throw LayoutError(where + ": the first tensor in the data buffer, " + quoted(t.name) +
                          ", starts at byte " + std::to_string(t.begin) + "; expected 0");
      }
      const bool gap = t.begin > expected;
      throw LayoutError(where + ": tensor " + quoted(t.name) + " occupies " + byte_range(t) + " but " +
                        quoted(previous->name) + " ends at byte " + std::to_string(expected) +
                        (gap ? ": a gap of " + std::to_string(t.begin - expected) + " bytes"
                             : ": the two overlap"));
    }
    expected = t.end;
    previous = &t;
  }
  if (expected != data_size) {
    const std::string sizes = " (file is " + std::to_string(file_size) + " bytes; 8 + header " +
                              std::to_string(header_size) + " + data " + std::to_string(expected) +
                              " = " + std::to_string(8 + header_size + expected) + " expected)";
    if (expected > data_size) {
      std::string first_outside;
      for (const TensorInfo& t : tensors) {
        if (t.end > data_size) {
          first_outside = quoted(t.name) + " " + byte_range(t);
          break;
        }
      }
      throw FileSizeError(where + ": file is truncated: tensor " + first_outside +
                          " ends beyond the " + std::to_string(data_size) + "-byte data buffer" +
                          sizes);
    }
    throw FileSizeError(where + ": " + std::to_string(data_size - expected) +
                        " trailing bytes after the last tensor" + sizes);
  }
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const std::byte* file, size_t file_size,
                                           const std::string& path) {
  const std::string where = quoted(path);
  if (file_size < 8) {
    throw HeaderLengthError(where + ": file is " + std::to_string(file_size) +
                            " bytes; a safetensors file starts with an 8-byte header length");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);  // little-endian
  if (n > kMaxHeaderSize) {
    throw HeaderTooLargeError(where + ": header length " + std::to_string(n) +
                              " exceeds the limit of " + std::to_string(kMaxHeaderSize) + " bytes");
  }
  if (n > file_size - 8) {
    throw HeaderLengthError(where + ": header length " + std::to_string(n) +
                            " points beyond the end of the file (" + std::to_string(file_size) +
                            " bytes, so at most " + std::to_string(file_size - 8) +
                            " header bytes)");
  }

  const std::string_view text(reinterpret_cast<const char*>(file + 8), n);
  StrictJson parsed = parse_json_strict(text);
  if (parsed.problem) {
    const std::string detail = where + ": header " + parsed.problem->detail;
    switch (parsed.problem->kind) {
      case JsonProblem::Kind::Encoding: throw HeaderEncodingError(detail);
      case JsonProblem::Kind::DuplicateKey: throw DuplicateKeyError(detail);
      case JsonProblem::Kind::Syntax: throw HeaderJsonError(where + ": header is not valid JSON: " +
                                                            parsed.problem->detail);
    }
  }
  if (!parsed.value.is_object()) {
    throw HeaderJsonError(where + ": header must be a JSON object, found " +
                          json_kind(parsed.value));
  }

  SafetensorsHeader header;
  header.header_size = n;
  for (const auto& [key, value] : parsed.value.items()) {  // nlohmann orders keys by name
    if (key == "__metadata__") {
      header.metadata = parse_metadata(value, where);
    } else {
      header.tensors.push_back(parse_entry(key, value, where));
    }
  }
  check_layout(header.tensors, file_size - 8 - n, n, file_size, where);
  return header;
}

}  // namespace hfport
