#include "core/safetensors_file.h"

#include <array>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/regular_file.h"

namespace hfport {

std::string pickle_conversion_hint(const std::string& path) {
  return "hfport never unpickles checkpoints (unpickling can run arbitrary code). Convert '" +
         path + "' once with: hfport convert-pickle '" + path + "' <out_dir> (it reads the "
         "pickle only through torch.load(weights_only=True), in a separate process, and keeps "
         "one copy of tied weights); for a transformers model, model.save_pretrained(out_dir) "
         "writes safetensors directly";
}

void refuse_pickle_by_name(const std::string& path) {
  static constexpr std::array<const char*, 5> kPickleExtensions = {".bin", ".pt", ".pth", ".ckpt",
                                                                   ".pkl"};
  const std::string ext = std::filesystem::path(path).extension().string();
  for (const char* pickle : kPickleExtensions) {
    if (ext == pickle) {
      throw UnsupportedFormatError("'" + path + "' is a pickle checkpoint (" + ext + "). " +
                                   pickle_conversion_hint(path));
    }
  }
}

// torch.save writes a zip archive ("PK\x03\x04"); older torch and plain pickle start with the
// PROTO opcode 0x80 followed by a protocol number 2..5. Those bytes are also the low bytes of
// plausible safetensors header lengths (0x0280 = 640, 0x04034b50 = 67,324,752), so a file counts
// as a pickle only when its start cannot be a safetensors one.
bool looks_like_pickle(const std::byte* data, size_t size) {
  if (has_safetensors_start(data, size)) return false;
  if (size >= 4 && std::memcmp(data, "PK\x03\x04", 4) == 0) return true;
  return size >= 2 && static_cast<uint8_t>(data[0]) == 0x80 &&
         static_cast<uint8_t>(data[1]) >= 2 && static_cast<uint8_t>(data[1]) <= 5;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path,
                                                       FileAccess access) {
  refuse_pickle_by_name(path);
  std::shared_ptr<MappedFile> mapping;
  std::shared_ptr<Storage> storage;
  if (access == FileAccess::Map) {
    storage = mapping = std::make_shared<MappedFile>(path);
  } else {
    storage = read_regular_file_to_storage(path);
  }
  if (looks_like_pickle(storage->data(), storage->size())) {
    throw UnsupportedFormatError("'" + path + "' holds a pickle or torch zip archive, not "
                                 "safetensors. " + pickle_conversion_hint(path));
  }
  SafetensorsHeader header = parse_safetensors_header(storage->data(), storage->size(), path);
  return std::shared_ptr<SafetensorsFile>(new SafetensorsFile(
      path, std::move(storage), std::move(mapping), std::move(header)));
}

SafetensorsFile::SafetensorsFile(std::string path, std::shared_ptr<Storage> storage,
                                 std::shared_ptr<MappedFile> mapping, SafetensorsHeader header)
    : path_(std::move(path)),
      storage_(std::move(storage)),
      mapping_(std::move(mapping)),
      header_(std::move(header)) {
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    throw TensorNotFoundError("no tensor '" + name + "' in '" + path() + "' (" +
                              std::to_string(header_.tensors.size()) + " tensors)");
  }
  return header_.tensors[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const { return view(info(name)); }

Tensor SafetensorsFile::view(const TensorInfo& t) const {
  if (mapping_) mapping_->check_size_unchanged();
  return Tensor(storage_, header_.data_offset() + t.begin, t.dtype, t.shape,
                contiguous_strides(t.shape));
}

}  // namespace hfport
