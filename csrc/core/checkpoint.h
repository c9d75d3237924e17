// A checkpoint: one safetensors file, or a folder of shards with model.safetensors.index.json, seen
// as one name -> tensor lookup. config.json beside it is read when present.
//
// `open` accepts a .safetensors file, an *.index.json file, or a folder. In a folder it takes, in
// order: model.safetensors.index.json, the single other *.safetensors.index.json, model.safetensors,
// the single *.safetensors. Anything else is an error that says what the folder holds.
//
// Index rules (each a ShardError subclass naming the index and the shard or tensor): every shard
// is a plain relative path inside the folder (no `..`, not absolute, no symlink that resolves
// outside), exists, holds every tensor the index assigns to it, and holds no tensor that the index
// does not list or that another shard also holds.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors_file.h"

namespace hfport {

class Checkpoint {
 public:
  // `access`: how every file of it is reached (safetensors_file.h: mapped, or read into memory).
  static std::shared_ptr<Checkpoint> open(const std::string& path,
                                          FileAccess access = FileAccess::Map);

  const std::string& path() const { return path_; }     // what was opened
  bool is_sharded() const { return !index_path_.empty(); }

  // Drops this checkpoint's hold on its files; every accessor below then throws
  // CheckpointClosedError. Views already taken stay valid: each holds its file's mapping (or
  // buffer) itself, which is released when the last of them is gone. Like closing a file, it must
  // not race with another thread reading through this checkpoint.
  void close();
  bool closed() const { return closed_; }

  const std::vector<std::shared_ptr<SafetensorsFile>>& shards() const;
  const std::vector<std::string>& names() const;  // sorted
  size_t size() const { return names().size(); }
  bool contains(const std::string& name) const;
  // TensorNotFoundError naming the checkpoint and the closest names ("did you mean") if absent.
  const TensorInfo& info(const std::string& name) const;
  const SafetensorsFile& shard_of(const std::string& name) const;
  Tensor tensor(const std::string& name) const;                 // zero-copy view

  // A single file's __metadata__; for a sharded checkpoint the index's "metadata" (values that are
  // not strings written as JSON text, e.g. "total_size").
  const std::map<std::string, std::string>& metadata() const;
  // Parsed config.json, or null when the checkpoint has none.
  const nlohmann::json& config() const;

 private:
  struct Entry {
    size_t shard;
    const TensorInfo* info;
  };
  Checkpoint() = default;
  const Entry& entry(const std::string& name) const;  // throws TensorNotFoundError
  static std::shared_ptr<Checkpoint> open_unchecked(const std::string& path, FileAccess access);
  void open_single(const std::string& file, FileAccess access);
  void open_index(const std::string& index_file, FileAccess access);
  void read_config(const std::string& folder);
  void check_open() const;  // CheckpointClosedError after close()

  std::string path_;
  std::string index_path_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
  nlohmann::json config_;
  bool closed_ = false;
};

}  // namespace hfport
