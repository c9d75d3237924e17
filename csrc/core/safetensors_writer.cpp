// See safetensors_writer.h.
#include "core/safetensors_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hfport {

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || !names.insert(name).second) {
      throw Error("cannot write " + path + ": tensor name '" + name + "' is reserved or repeated");
    }
    if (tensor.device().type != DeviceType::CPU) {
      throw DeviceError("cannot write " + path + ": tensor '" + name + "' is on CUDA");
    }
    header[name] = {{"dtype", dtype_name(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + tensor.nbytes()}}};
    offset += tensor.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  const std::string temporary = path + ".partial";
  FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) throw FileError("cannot create " + temporary + ": " + std::strerror(errno));
  bool ok = true;
  const uint64_t length = text.size();
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(length >> (8 * i));
  ok &= std::fwrite(length_bytes, 1, 8, file) == 8;
  ok &= std::fwrite(text.data(), 1, text.size(), file) == text.size();
  try {
    for (const auto& [name, tensor] : tensors) {
      if (!ok) break;
      const Tensor contiguous = tensor.contiguous();
      if (contiguous.nbytes() == 0) continue;
      ok &= std::fwrite(contiguous.data(), 1, contiguous.nbytes(), file) == contiguous.nbytes();
    }
  } catch (...) {  // a failed copy of a strided tensor: leave no partial file behind
    std::fclose(file);
    std::remove(temporary.c_str());
    throw;
  }
  ok &= std::fclose(file) == 0;
  if (!ok || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw FileError("cannot write " + path + " (disk full or not writable?)");
  }
}

}  // namespace hfport
