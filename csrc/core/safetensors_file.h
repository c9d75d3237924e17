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

class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return mapping_->path(); }
  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }
  const SafetensorsHeader& header() const { return header_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }  // sorted by name
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws TensorNotFoundError
  Tensor tensor(const std::string& name) const;           // a view into the mapping
  Tensor view(const TensorInfo& info) const;  // the same, for an entry of this file's header

 private:
  SafetensorsFile(std::shared_ptr<MappedFile> mapping, SafetensorsHeader header);

  std::shared_ptr<MappedFile> mapping_;
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
