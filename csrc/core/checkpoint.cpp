#include "core/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/json_strict.h"
#include "core/name_suggestions.h"
#include "core/regular_file.h"

namespace hfport {

namespace fs = std::filesystem;

namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The folder's entry names, sorted: read once, then filtered as often as needed.
std::vector<std::string> folder_listing(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(folder)) {
    names.push_back(item.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> ending_with(const std::vector<std::string>& names,
                                     const std::string& suffix) {
  std::vector<std::string> found;
  for (const std::string& name : names) {
    if (ends_with(name, suffix)) found.push_back(name);
  }
  return found;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

// A shard path from index.json must name a file inside `folder`: relative, no `..`, and, after
// following links, still inside the folder.
fs::path checked_shard_path(const fs::path& folder, const std::string& shard,
                            const std::string& index_name) {
  for (size_t i = 0; i < shard.size(); ++i) {
    const auto c = static_cast<unsigned char>(shard[i]);
    if (c < 0x20 || c == 0x7f) {
      // The OS reads a name only up to a NUL: "a.safetensors\0.evil" would open a.safetensors.
      throw ShardPathError(index_name + ": shard path " + quoted(printable(shard)) +
                           " contains a control character at byte " + std::to_string(i) +
                           "; shard paths are plain file names");
    }
  }
  const fs::path relative(shard);
  if (shard.empty() || relative.is_absolute()) {
    throw ShardPathError(index_name + ": shard path " + quoted(shard) +
                         " must be a relative path inside the checkpoint folder");
  }
  for (const auto& part : relative) {
    if (part == "..") {
      throw ShardPathError(index_name + ": shard path " + quoted(shard) +
                           " contains '..'; shards must stay inside the checkpoint folder");
    }
  }
  const fs::path full = folder / relative;
  switch (path_kind(full.string())) {
    case PathKind::Missing:
      throw MissingShardError(index_name + ": shard " + quoted(shard) + " does not exist in " +
                              quoted(folder.string()));
    case PathKind::LinkLoop:
      throw ShardPathError(index_name + ": shard " + quoted(shard) + " is a symbolic link loop");
    default: break;  // a directory or a FIFO is refused when opened, saying what it is
  }
  const fs::path real_folder = fs::canonical(folder);
  const fs::path real_shard = fs::canonical(full);
  const auto [folder_end, unused] =
      std::mismatch(real_folder.begin(), real_folder.end(), real_shard.begin(), real_shard.end());
  if (folder_end != real_folder.end()) {
    throw ShardPathError(index_name + ": shard " + quoted(shard) + " resolves to " +
                         quoted(real_shard.string()) + ", outside the checkpoint folder " +
                         quoted(real_folder.string()));
  }
  return full;
}

}  // namespace

std::shared_ptr<Checkpoint> Checkpoint::open(const std::string& path, FileAccess access) {
  try {
    return open_unchecked(path, access);
  } catch (const fs::filesystem_error& e) {  // an unreadable folder, a link loop, ...
    throw FileError(quoted(path) + ": " + e.what());
  }
}

std::shared_ptr<Checkpoint> Checkpoint::open_unchecked(const std::string& path,
                                                   FileAccess access) {
  std::shared_ptr<Checkpoint> ck(new Checkpoint());
  ck->path_ = path;
  const fs::path p(path);
  const PathKind kind = path_kind(path);
  if (kind == PathKind::LinkLoop) throw FileError(quoted(path) + " is a symbolic link loop");
  if (kind == PathKind::Directory) {
    const auto listing = folder_listing(p);
    const auto holds = [&](const char* name) {
      return std::binary_search(listing.begin(), listing.end(), name);
    };
    const auto indexes = ending_with(listing, ".safetensors.index.json");
    const auto files = ending_with(listing, ".safetensors");
    if (holds("model.safetensors.index.json")) {
      ck->open_index((p / "model.safetensors.index.json").string(), access);
    } else if (indexes.size() == 1) {
      ck->open_index((p / indexes[0]).string(), access);
    } else if (indexes.size() > 1) {
      throw FileError(quoted(path) + " holds several index files (" + joined(indexes) +
                      "); open one of them by path");
    } else if (holds("model.safetensors")) {
      ck->open_single((p / "model.safetensors").string(), access);
    } else if (files.size() == 1) {
      ck->open_single((p / files[0]).string(), access);
    } else if (files.size() > 1) {
      throw FileError(quoted(path) + " holds " + std::to_string(files.size()) +
                      " safetensors files (" + joined(files) +
                      ") but no model.safetensors.index.json; open one file by path");
    } else {
      for (const char* pickle : {".bin", ".pt", ".pth", ".ckpt", ".pkl"}) {
        const auto found = ending_with(listing, pickle);
        if (!found.empty()) {
          throw UnsupportedFormatError(quoted(path) + " holds only pickle checkpoints (" +
                                       joined(found) + "). " +
                                       pickle_conversion_hint((p / found[0]).string()));
        }
      }
      throw FileError(quoted(path) + " holds no .safetensors file and no index.json");
    }
    ck->read_config(p.string());
  } else if (kind != PathKind::Missing) {
    if (ends_with(path, ".json")) {
      ck->open_index(path, access);
    } else {
      ck->open_single(path, access);
    }
    ck->read_config(p.parent_path().empty() ? "." : p.parent_path().string());
  } else {
    refuse_pickle_by_name(path);
    throw FileError("no such file or folder " + quoted(path));
  }
  ck->names_.reserve(ck->entries_.size());
  for (const auto& [name, unused] : ck->entries_) ck->names_.push_back(name);
  std::sort(ck->names_.begin(), ck->names_.end());
  return ck;
}

void Checkpoint::open_single(const std::string& file, FileAccess access) {
  shards_.push_back(SafetensorsFile::open(file, access));
  for (const TensorInfo& t : shards_[0]->tensors()) entries_[t.name] = Entry{0, &t};
  metadata_ = shards_[0]->metadata();
}

void Checkpoint::open_index(const std::string& index_file, FileAccess access) {
  index_path_ = index_file;
  const std::string where = quoted(index_file);
  const fs::path folder = fs::path(index_file).parent_path().empty()
                              ? fs::path(".")
                              : fs::path(index_file).parent_path();
  StrictJson parsed = parse_json_strict(read_regular_file(index_file));
  if (parsed.problem) throw ShardIndexError(where + ": " + parsed.problem->detail);
  const nlohmann::json& index = parsed.value;
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw ShardIndexError(where + ": an index must be a JSON object with a \"weight_map\" object "
                          "mapping tensor names to shard files");
  }
  if (index.contains("metadata")) {
    if (!index["metadata"].is_object()) {
      throw ShardIndexError(where + ": \"metadata\" must be an object");
    }
    for (const auto& [key, value] : index["metadata"].items()) {
      metadata_[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }

  // Open each shard once, in name order.
  std::map<std::string, size_t> shard_position;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) {
      throw ShardIndexError(where + ": weight_map[" + quoted(name) +
                            "] must be a shard file name, found " + shard.dump());
    }
    shard_position.emplace(shard.get<std::string>(), 0);
  }
  for (auto& [shard, position] : shard_position) {
    position = shards_.size();
    shards_.push_back(
        SafetensorsFile::open(checked_shard_path(folder, shard, where).string(), access));
  }

  // Every tensor in exactly one shard, and that shard the one the index names.
  std::unordered_map<std::string, size_t> owner;
  for (size_t s = 0; s < shards_.size(); ++s) {
    for (const TensorInfo& t : shards_[s]->tensors()) {
      auto [it, inserted] = owner.emplace(t.name, s);
      if (!inserted) {
        throw DuplicateTensorError(where + ": tensor " + quoted(t.name) + " is in two shards, " +
                                   quoted(shards_[it->second]->path()) + " and " +
                                   quoted(shards_[s]->path()));
      }
      entries_[t.name] = Entry{s, &t};
    }
  }
  for (const auto& [name, shard] : index["weight_map"].items()) {
    const size_t s = shard_position.at(shard.get<std::string>());
    if (!shards_[s]->contains(name)) {
      throw ShardTensorMissingError(where + " puts tensor " + quoted(name) + " in shard " +
                                    quoted(shard.get<std::string>()) +
                                    ", but that shard has no such tensor");
    }
  }
  for (const auto& [name, entry] : entries_) {
    if (!index["weight_map"].contains(name)) {
      throw ShardIndexError(where + ": shard " + quoted(shards_[entry.shard]->path()) +
                            " holds tensor " + quoted(name) + ", which the index does not list");
    }
  }
}

void Checkpoint::read_config(const std::string& folder) {
  const fs::path file = fs::path(folder) / "config.json";
  if (path_kind(file.string()) == PathKind::Missing) return;
  StrictJson parsed = parse_json_strict(read_regular_file(file.string()));
  if (parsed.problem) throw ConfigError(quoted(file.string()) + ": " + parsed.problem->detail);
  if (!parsed.value.is_object()) {
    throw ConfigError(quoted(file.string()) + ": config must be a JSON object");
  }
  config_ = std::move(parsed.value);
}

void Checkpoint::check_open() const {
  if (closed_) {
    throw CheckpointClosedError("checkpoint '" + path_ + "' is closed; open it again "
                                "(hfport.open) to read more tensors");
  }
}

void Checkpoint::close() {
  closed_ = true;
  // Entries point into the shards' headers: cleared with them.
  entries_.clear();
  names_.clear();
  names_.shrink_to_fit();
  shards_.clear();
  metadata_.clear();
  config_ = nullptr;
}

const std::vector<std::shared_ptr<SafetensorsFile>>& Checkpoint::shards() const {
  check_open();
  return shards_;
}

const std::vector<std::string>& Checkpoint::names() const {
  check_open();
  return names_;
}

bool Checkpoint::contains(const std::string& name) const {
  check_open();
  return entries_.count(name) != 0;
}

const std::map<std::string, std::string>& Checkpoint::metadata() const {
  check_open();
  return metadata_;
}

const nlohmann::json& Checkpoint::config() const {
  check_open();
  return config_;
}

const Checkpoint::Entry& Checkpoint::entry(const std::string& name) const {
  check_open();
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string message = "no tensor '" + name + "' in '" + path_ + "' (" +
                          std::to_string(entries_.size()) + " tensors)";
    const std::vector<std::string> close = closest_names(name, names_);
    for (size_t i = 0; i < close.size(); ++i) {
      message += (i == 0 ? "; did you mean '" : "', '") + close[i];
    }
    if (!close.empty()) message += "'?";
    throw TensorNotFoundError(message);
  }
  return it->second;
}

const TensorInfo& Checkpoint::info(const std::string& name) const { return *entry(name).info; }

const SafetensorsFile& Checkpoint::shard_of(const std::string& name) const {
  return *shards_[entry(name).shard];
}

Tensor Checkpoint::tensor(const std::string& name) const {
  const Entry& e = entry(name);
  return shards_[e.shard]->view(*e.info);
}

}  // namespace hfport
