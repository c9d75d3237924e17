// One safetensors file, mapped and validated once; afterwards every tensor is a zero-copy view of
// the mapping. Pickle checkpoints (.bin, .pt, .pth, .ckpt, .pkl, or a zip/pickle by its first
// bytes) are refused before anything is parsed: unpickling runs arbitrary code.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/safetensors_header.h"
#include "core/tensor.h"

namespace hfport {

// How a file's bytes are reached. Map (the default) is zero-copy: views point into a MAP_PRIVATE
// mapping, and a file truncated under it kills a reader with SIGBUS. Read copies the whole file
// into memory once, for files that may change while in use (network file systems, a checkpoint
// being rewritten): views then point into that copy and nothing on disk can reach them.
enum class FileAccess { Map, Read };

class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path,
                                               FileAccess access = FileAccess::Map);

  const std::string& path() const { return path_; }
  FileAccess access() const { return mapping_ ? FileAccess::Map : FileAccess::Read; }
  // The file's bytes: the mapping, or the copy in memory.
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  const SafetensorsHeader& header() const { return header_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }  // sorted by name
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws TensorNotFoundError
  Tensor tensor(const std::string& name) const;           // a view into the mapping
  // The same, for an entry of this file's header. A mapped file whose size has changed since it
  // was opened is a FileError here, before the view could reach past its end.
  Tensor view(const TensorInfo& info) const;

 private:
  SafetensorsFile(std::string path, std::shared_ptr<Storage> storage,
                  std::shared_ptr<MappedFile> mapping, SafetensorsHeader header);

  std::string path_;
  std::shared_ptr<Storage> storage_;
  std::shared_ptr<MappedFile> mapping_;  // the same object as storage_ when mapped, else null
  SafetensorsHeader header_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in header_.tensors
};

// Throws UnsupportedFormatError when `path` names a pickle checkpoint by its extension.
void refuse_pickle_by_name(const std::string& path);
// Whether a file's first bytes are a torch zip archive or a pickle stream. A start that can be a
// safetensors one (has_safetensors_start) is never taken for a pickle, whatever its bytes.
bool looks_like_pickle(const std::byte* data, size_t size);
// The message that says how to convert a pickle checkpoint to safetensors.
std::string pickle_conversion_hint(const std::string& path);

}  // namespace hfport
