#include "core/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_set>
#include <utility>

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

std::string known_dtype_names() {
  std::string names;
  for (int i = 0; i < kDTypeCount; ++i) {
    names += (i ? ", " : "") + std::string(dtype_name(static_cast<DType>(i)));
  }
  return names;
}

// Shapes and offsets are non-negative integers that fit int64.
constexpr uint64_t kMaxIndex = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

constexpr std::string_view kMetadataKey = "__metadata__";

enum Field : uint8_t { kDtype = 1, kShape = 2, kOffsets = 4 };

// One tensor's entry as the SAX pass read it; check_entry applies the rules to it afterwards.
// The fast path fills `info` and `offsets` directly. A value of any other form is kept as JSON in
// its raw_* member instead, for check_entry to say what is wrong with it.
struct EntryRead {
  TensorInfo info;  // shape: when raw_shape is set, the indices before the first non-index
  uint8_t fields = 0;  // the Fields seen
  uint64_t offsets[2] = {0, 0};
  size_t offsets_read = 0;
  std::optional<json> raw_entry;    // the entry, when it is not an object
  std::optional<json> raw_dtype;    // dtype, when it is not a known dtype name
  std::optional<json> raw_shape;    // shape, when it is not an array of indices
  std::optional<json> raw_offsets;  // data_offsets, when not an array of two indices
  std::set<std::string> unexpected_fields;
};

// The nlohmann SAX handler for a header. A valid header's events are read straight into
// EntryReads and the metadata map: no DOM, no per-key allocation beyond the names and shapes the
// result keeps. Any value not of the expected form (and the rest of an index array, from its
// first non-index on) is handed to a StrictDomBuilder, which keeps it as JSON for the error
// message while enforcing depth and unique keys exactly as parse_json_strict does. Keys read on
// the fast path are checked for repeats here: tensor names through `names_`, entry fields
// through `fields` and `unexpected_fields`, metadata keys through the metadata map. Nothing is
// thrown during the pass: rules other than JSON's are applied afterwards, in name order.
class HeaderReader {
 public:
  explicit HeaderReader(std::optional<JsonProblem>& problem)
      : problem_(problem), values_(problem) {}

  std::optional<json> raw_header;  // the header, when it is not an object
  // In the order read. A deque never moves its elements, so `names_` can view their names.
  std::deque<EntryRead> entries;
  std::map<std::string, std::string> metadata;
  std::optional<json> raw_metadata;               // __metadata__, when not an object or null
  std::map<std::string, json> non_string_metadata;  // the __metadata__ items that are not strings

  bool null() {
    // "__metadata__": null is no metadata, as safetensors reads it.
    if (at_value(Slot::Metadata)) return true;
    return diverted().null();
  }
  bool boolean(bool value) { return diverted().boolean(value); }
  bool number_integer(int64_t value) {
    if (takes_index() && value >= 0) return add_index(static_cast<uint64_t>(value));  // "-0"
    return diverted().number_integer(value);
  }
  bool number_unsigned(uint64_t value) {
    if (takes_index() && value <= kMaxIndex) return add_index(value);
    return diverted().number_unsigned(value);
  }
  bool number_float(double value, const std::string& text) {
    return diverted().number_float(value, text);
  }
  bool string(std::string& value) {
    if (at_value(Slot::Dtype)) {
      if (const auto dtype = dtype_from_name(value)) {
        entries.back().info.dtype = *dtype;
      } else {
        entries.back().raw_dtype = value;
      }
      return true;
    }
    if (at_value(Slot::MetadataItem)) {
      metadata_item_->second = value;
      return true;
    }
    return diverted().string(value);
  }
  bool binary(json::binary_t& value) { return diverted().binary(value); }

  bool start_object(size_t size) {
    if (at_value(Slot::Header)) return enter(In::Header);
    if (at_value(Slot::Entry)) return enter(In::Entry);
    if (at_value(Slot::Metadata)) return enter(In::Metadata);
    return diverted().start_object(size);
  }
  bool start_array(size_t size) {
    if (at_value(Slot::Shape)) {
      entries.back().info.shape.reserve(4);  // one allocation for the usual ranks
      return enter(In::Shape);
    }
    if (at_value(Slot::Offsets)) return enter(In::Offsets);
    return diverted().start_array(size);
  }
  bool key(std::string& key) {
    if (values_.active()) return values_.key(key);
    if (in_ == In::Header) return header_key(key);
    if (in_ == In::Entry) return entry_key(key);
    auto [item, added] = metadata.try_emplace(key);
    if (!added) return refuse(duplicate_key(key));
    metadata_item_ = item;
    slot_ = Slot::MetadataItem;
    return true;
  }
  bool end_object() {
    if (values_.active()) return values_.end_object();
    return enter(in_ == In::Header ? In::Nothing : In::Header);  // an entry or __metadata__ ended
  }
  bool end_array() {
    if (values_.active()) return values_.end_array();
    EntryRead& entry = entries.back();
    if (in_ == In::Offsets && entry.offsets_read != 2) entry.raw_offsets = read_offsets(entry);
    return enter(In::Entry);
  }
  bool parse_error(size_t position, const std::string& token, const json::exception& error) {
    return values_.parse_error(position, token, error);
  }

 private:
  // The value the next event starts (what the last key named), and the innermost container the
  // fast path is inside; the fast path never goes deeper than In::Shape, three levels.
  enum class Slot { Header, Entry, Metadata, MetadataItem, Dtype, Shape, Offsets, Ignored };
  enum class In { Nothing, Header, Entry, Metadata, Shape, Offsets };

  bool at_value(Slot slot) const {
    return slot_ == slot && !values_.active() && in_ != In::Shape && in_ != In::Offsets;
  }
  bool takes_index() const {
    return !values_.active() &&
           (in_ == In::Shape || (in_ == In::Offsets && entries.back().offsets_read < 2));
  }
  bool enter(In in) {
    in_ = in;
    return true;
  }
  bool refuse(JsonProblem problem) {
    problem_ = std::move(problem);
    return false;
  }

  bool header_key(const std::string& key) {
    if (key == kMetadataKey) {
      if (metadata_seen_) return refuse(duplicate_key(key));
      metadata_seen_ = true;
      slot_ = Slot::Metadata;
      return true;
    }
    const std::string& name = entries.emplace_back().info.name = key;
    if (!names_.insert(name).second) return refuse(duplicate_key(key));
    slot_ = Slot::Entry;
    return true;
  }

  bool entry_key(const std::string& key) {
    EntryRead& entry = entries.back();
    Field field;
    if (key == std::string_view("dtype")) {
      field = kDtype;
      slot_ = Slot::Dtype;
    } else if (key == std::string_view("shape")) {
      field = kShape;
      slot_ = Slot::Shape;
    } else if (key == std::string_view("data_offsets")) {
      field = kOffsets;
      slot_ = Slot::Offsets;
    } else {
      if (!entry.unexpected_fields.insert(key).second) return refuse(duplicate_key(key));
      slot_ = Slot::Ignored;
      return true;
    }
    if (entry.fields & field) return refuse(duplicate_key(key));
    entry.fields |= field;
    return true;
  }

  bool add_index(uint64_t value) {
    EntryRead& entry = entries.back();
    if (in_ == In::Shape) {
      entry.info.shape.push_back(static_cast<int64_t>(value));
    } else {
      entry.offsets[entry.offsets_read++] = value;
    }
    return true;
  }

  static json read_offsets(const EntryRead& entry) {
    json offsets = json::array();
    for (size_t i = 0; i < entry.offsets_read; ++i) offsets.push_back(entry.offsets[i]);
    return offsets;
  }

  // values_, set to take the value that the coming event starts (or continues: inside an index
  // array, the array read so far, which it then finishes).
  StrictDomBuilder& diverted() {
    if (values_.active()) return values_;
    if (in_ == In::Shape || in_ == In::Offsets) {
      EntryRead& entry = entries.back();
      json& array = in_ == In::Shape ? entry.raw_shape.emplace(entry.info.shape)
                                     : entry.raw_offsets.emplace(read_offsets(entry));
      values_.resume_array(&array, 2);
      in_ = In::Entry;  // where the array's end, read by values_, leaves the fast path
      return values_;
    }
    values_.start(raw_slot(), in_ == In::Nothing ? 0 : in_ == In::Header ? 1 : 2);
    return values_;
  }

  json* raw_slot() {
    switch (slot_) {
      case Slot::Header: return &raw_header.emplace();
      case Slot::Entry: return &entries.back().raw_entry.emplace();
      case Slot::Metadata: return &raw_metadata.emplace();
      case Slot::MetadataItem: return &non_string_metadata[metadata_item_->first];
      case Slot::Dtype: return &entries.back().raw_dtype.emplace();
      case Slot::Shape: return &entries.back().raw_shape.emplace();
      case Slot::Offsets: return &entries.back().raw_offsets.emplace();
      case Slot::Ignored: break;
    }
    return &ignored_;  // an unexpected field's value: checked, then dropped
  }

  std::optional<JsonProblem>& problem_;
  StrictDomBuilder values_;
  Slot slot_ = Slot::Header;
  In in_ = In::Nothing;
  std::unordered_set<std::string_view> names_;  // views of entries' names
  bool metadata_seen_ = false;
  std::map<std::string, std::string>::iterator metadata_item_;
  json ignored_;
};

void check_metadata(const HeaderReader& read, const std::string& where) {
  if (read.raw_metadata) {
    throw MetadataError(where + ": __metadata__ must be an object of strings, found " +
                        json_kind(*read.raw_metadata));
  }
  if (!read.non_string_metadata.empty()) {  // std::map: the first key in name order
    const auto& [key, item] = *read.non_string_metadata.begin();
    throw MetadataError(where + ": __metadata__[" + quoted(key) + "] must be a string, found " +
                        json_kind(item));
  }
}

TensorInfo check_entry(EntryRead& entry, const std::string& where) {
  TensorInfo& info = entry.info;
  const std::string& name = info.name;
  const auto tensor = [&] { return where + ": tensor " + quoted(name); };
  if (entry.raw_entry) {
    throw TensorEntryError(tensor() + " must be an object {dtype, shape, data_offsets}, found " +
                           json_kind(*entry.raw_entry));
  }
  for (const auto& [field, field_name] : {std::pair{kDtype, "dtype"}, std::pair{kShape, "shape"},
                                          std::pair{kOffsets, "data_offsets"}}) {
    if (!(entry.fields & field)) {
      throw TensorEntryError(tensor() + " has no '" + field_name + "' field");
    }
  }
  if (!entry.unexpected_fields.empty()) {  // std::set: the first in name order
    throw TensorEntryError(tensor() + " has an unexpected field " +
                           quoted(*entry.unexpected_fields.begin()) +
                           " (expected only dtype, shape, data_offsets)");
  }

  if (entry.raw_dtype) {
    if (!entry.raw_dtype->is_string()) {
      throw DTypeError(tensor() + ": dtype must be a string, found " + json_kind(*entry.raw_dtype));
    }
    throw DTypeError(tensor() + " has unknown dtype " +
                     quoted(entry.raw_dtype->get<std::string>()) + "; known dtypes: " +
                     known_dtype_names());
  }

  const json* raw_shape = entry.raw_shape ? &*entry.raw_shape : nullptr;
  if (raw_shape && !raw_shape->is_array()) {
    throw ShapeError(tensor() + ": shape must be an array of non-negative integers, found " +
                     json_kind(*raw_shape));
  }
  // Overflow checks as torch makes them: the element strides of the contiguous layout (products
  // of max(dim, 1) over the dims after each) fit int64, so [0, 2^31, 2^31] is a valid empty
  // tensor while [0, 2^62, 2^62] is refused; and a tensor that holds elements has a byte size
  // that fits int64. Without the first rule a stride would wrap, without the second an offset.
  const uint64_t item = dtype_size(info.dtype);
  const size_t rank = raw_shape ? raw_shape->size() : info.shape.size();
  const auto overflows = [&] {
    const std::string shape = raw_shape ? raw_shape->dump() : json(info.shape).dump();
    return ShapeError(tensor() + ": shape " + shape + " overflows: its byte size (or a stride) "
                      "does not fit in 64 bits");
  };
  uint64_t stride = 1;  // of the dim before the one read, in elements
  uint64_t numel = 1;   // saturates at kMaxIndex + 1: only compared, and only when no dim is 0
  bool zero_dim = false;
  for (size_t i = 0; i < rank; ++i) {
    if (i == info.shape.size()) {  // the first element of raw_shape that is not an index
      const json& dim = (*raw_shape)[i];
      throw ShapeError(tensor() + ": shape[" + std::to_string(i) + "] must be a non-negative "
                       "integer below 2^63, found " + json_kind(dim) + " " + dim.dump());
    }
    const uint64_t dim = static_cast<uint64_t>(info.shape[i]);
    zero_dim = zero_dim || dim == 0;
    numel = dim != 0 && numel > kMaxIndex / dim ? kMaxIndex + 1 : numel * dim;
    if (i > 0) {
      const uint64_t factor = std::max<uint64_t>(dim, 1);
      if (stride > kMaxIndex / factor) throw overflows();
      stride *= factor;
    }
  }
  if (zero_dim) numel = 0;
  if (numel > kMaxIndex / item) throw overflows();
  const uint64_t nbytes = numel * item;

  if (entry.raw_offsets) {
    const json& offsets = *entry.raw_offsets;
    if (!offsets.is_array() || offsets.size() != 2) {
      throw OffsetsError(tensor() + ": data_offsets must be [begin, end], found " + offsets.dump());
    }
    // Two values, kept as JSON because one is not an index.
    throw OffsetsError(tensor() + ": data_offsets must be non-negative integers, found " +
                       offsets.dump());
  }
  const uint64_t begin = entry.offsets[0];
  const uint64_t end = entry.offsets[1];
  const auto offsets = [&] { return json::array({begin, end}).dump(); };
  if (begin > end) {
    throw OffsetsError(tensor() + ": data_offsets " + offsets() + " end before they begin");
  }
  if (end - begin != nbytes) {
    throw OffsetsError(tensor() + " has shape " + shape_to_string(info.shape) + " and dtype " +
                       std::string(dtype_name(info.dtype)) + ", so " + std::to_string(nbytes) +
                       " bytes, but data_offsets " + offsets() + " span " +
                       std::to_string(end - begin) + " bytes");
  }
  info.begin = begin;
  info.end = end;
  return std::move(info);
}

// Offsets must tile the data buffer exactly: start at 0, no gap, no overlap, end at its end.
// `named` is in name order. Sorting pointers to it makes the permutation that sorting the tensors
// themselves would, so tied offsets name the same tensors in messages as they always have.
void check_layout(const std::vector<TensorInfo>& named, uint64_t data_size, uint64_t header_size,
                  size_t file_size, const std::string& where) {
  std::vector<const TensorInfo*> tensors(named.size());
  for (size_t i = 0; i < named.size(); ++i) tensors[i] = &named[i];
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* tp : tensors) {
    const TensorInfo& t = *tp;
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
      for (const TensorInfo* t : tensors) {
        if (t->end > data_size) {
          first_outside = quoted(t->name) + " " + byte_range(*t);
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

uint64_t safetensors_header_length(const std::byte* file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);  // little-endian
  return n;
}

bool has_safetensors_start(const std::byte* file, size_t file_size) {
  if (file_size < 9) return false;
  const uint64_t n = safetensors_header_length(file);
  return n >= 1 && n <= file_size - 8 && static_cast<char>(file[8]) == '{';
}

SafetensorsHeader parse_safetensors_header(const std::byte* file, size_t file_size,
                                           const std::string& path) {
  const std::string where = quoted(path);
  if (file_size < 8) {
    throw HeaderLengthError(where + ": file is " + std::to_string(file_size) +
                            " bytes; a safetensors file starts with an 8-byte header length");
  }
  const uint64_t n = safetensors_header_length(file);
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
  std::optional<JsonProblem> problem = check_json_text(text);
  HeaderReader read(problem);
  if (!problem) json::sax_parse(text.begin(), text.end(), &read);
  if (problem) {
    const std::string detail = where + ": header " + problem->detail;
    switch (problem->kind) {
      case JsonProblem::Kind::Encoding: throw HeaderEncodingError(detail);
      case JsonProblem::Kind::DuplicateKey: throw DuplicateKeyError(detail);
      case JsonProblem::Kind::Syntax: throw HeaderJsonError(where + ": header is not valid JSON: " +
                                                            problem->detail);
    }
  }
  if (read.raw_header) {
    throw HeaderJsonError(where + ": header must be a JSON object, found " +
                          json_kind(*read.raw_header));
  }

  // The rules are applied entry by entry in name order, __metadata__ in its place among the
  // names, so a header that breaks several reports the same one whatever order its keys are in.
  std::deque<EntryRead>& entries = read.entries;
  std::vector<size_t> by_name(entries.size());
  for (size_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
  std::sort(by_name.begin(), by_name.end(),
            [&](size_t a, size_t b) { return entries[a].info.name < entries[b].info.name; });
  const auto metadata_place =
      std::partition_point(by_name.begin(), by_name.end(),
                           [&](size_t i) { return entries[i].info.name < kMetadataKey; });
  SafetensorsHeader header;
  header.header_size = n;
  header.tensors.reserve(entries.size());
  for (auto it = by_name.begin(); it != by_name.end(); ++it) {
    if (it == metadata_place) check_metadata(read, where);
    header.tensors.push_back(check_entry(entries[*it], where));
  }
  if (metadata_place == by_name.end()) check_metadata(read, where);
  header.metadata = std::move(read.metadata);
  check_layout(header.tensors, file_size - 8 - n, n, file_size, where);
  return header;
}

}  // namespace hfport
