// Fuzzes Checkpoint::open (core/checkpoint.h) on a folder of real shards, with the input as the
// folder's model.safetensors.index.json.
//
// The folder is made once per process (under $TMPDIR when set, else /dev/shm when writable, else
// /tmp) and removed at exit; a crash leaves it behind, as hfport-fuzz-index-* (run_fuzzers.sh
// points TMPDIR at a folder of its own and removes that). It holds what make_corpus.py's index seeds name, so they start valid:
//
//   ckpt/model-00001-of-00003.safetensors   embed.weight F32 [2, 3], norm.weight BF16 [3]
//   ckpt/model-00002-of-00003.safetensors   attn.q.weight F16 [2, 2], attn.k.weight I8 [0, 4],
//                                           with __metadata__ {"format": "pt"}
//   ckpt/nested/model-00003-of-00003.safetensors   lm_head.weight F32 [3, 2]
//   ckpt/alias.safetensors     a symlink to model-00001-of-00003.safetensors (stays inside)
//   ckpt/outside.safetensors   a symlink to ../elsewhere/outside.safetensors (leaves the folder),
//                              a valid file holding outside.weight U8 [4]
//   ckpt/loop.safetensors      a symlink to itself
//   ckpt/dangling.safetensors  a symlink to a file that does not exist
//   ckpt/empty.safetensors     zero bytes
//   ckpt/notes.txt             a few bytes of text
//   ckpt/config.json           {"model_type": "llama", "hidden_size": 3}
//
// Each run overwrites the index file and opens the folder; nothing else is created per run.
//
// A bug is a crash, a sanitizer report, a hang past -timeout, or an exception that is not an
// hfport::Error. When the index is accepted, the lookup it builds is checked too: every shard path
// free of NUL (the system would open the file named by the part before it, not the one the index
// names), names sorted and unique, each one's shard holding it, and its bytes readable through
// the zero-copy view.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/error.h"

namespace {

namespace fs = std::filesystem;

struct ShardTensor {
  const char* name;
  const char* dtype;
  std::vector<int64_t> shape;
  size_t item;
};

// The safetensors format, written here without hfport's own writer so the fixture does not share
// the code under test: 8-byte little-endian header length, JSON header padded with spaces to a
// multiple of 8, then the tensors' bytes back to back in header order.
void write_safetensors(const fs::path& path, const std::vector<ShardTensor>& tensors,
                       const std::string& metadata_json) {
  std::string header = "{";
  if (!metadata_json.empty()) header += "\"__metadata__\":" + metadata_json;
  size_t offset = 0;
  for (const ShardTensor& t : tensors) {
    size_t bytes = t.item;
    std::string shape;
    for (int64_t dim : t.shape) {
      bytes *= static_cast<size_t>(dim);
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    }
    header += std::string(header.size() > 1 ? "," : "") + "\"" + t.name + "\":{\"dtype\":\"" +
              t.dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  for (size_t i = 0; i < offset; ++i) file += static_cast<char>(i * 37 + 11);
  std::ofstream out(path, std::ios::binary);
  out.write(file.data(), static_cast<std::streamsize>(file.size()));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

fs::path scratch_root() {
  const char* tmp = std::getenv("TMPDIR");
  if (tmp && *tmp) return tmp;
  return ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

fs::path fixture_root;  // removed at exit

void remove_fixture() {
  std::error_code ignored;
  fs::remove_all(fixture_root, ignored);
}

// The checkpoint folder, made on first use.
const fs::path& checkpoint_folder() {
  static const fs::path folder = [] {
    std::string pattern = (scratch_root() / "hfport-fuzz-index-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("fuzz_sharded_index: mkdtemp");
      std::abort();
    }
    fixture_root = pattern;
    std::atexit(remove_fixture);
    const fs::path ckpt = fixture_root / "ckpt";
    fs::create_directories(ckpt / "nested");
    fs::create_directories(fixture_root / "elsewhere");
    write_safetensors(ckpt / "model-00001-of-00003.safetensors",
                      {{"embed.weight", "F32", {2, 3}, 4}, {"norm.weight", "BF16", {3}, 2}}, "");
    write_safetensors(ckpt / "model-00002-of-00003.safetensors",
                      {{"attn.q.weight", "F16", {2, 2}, 2}, {"attn.k.weight", "I8", {0, 4}, 1}},
                      "{\"format\":\"pt\"}");
    write_safetensors(ckpt / "nested" / "model-00003-of-00003.safetensors",
                      {{"lm_head.weight", "F32", {3, 2}, 4}}, "");
    write_safetensors(fixture_root / "elsewhere" / "outside.safetensors",
                      {{"outside.weight", "U8", {4}, 1}}, "");
    fs::create_symlink("model-00001-of-00003.safetensors", ckpt / "alias.safetensors");
    fs::create_symlink("../elsewhere/outside.safetensors", ckpt / "outside.safetensors");
    fs::create_symlink("loop.safetensors", ckpt / "loop.safetensors");
    fs::create_symlink("missing.safetensors", ckpt / "dangling.safetensors");
    write_text(ckpt / "empty.safetensors", "");
    write_text(ckpt / "notes.txt", "not a checkpoint\n");
    write_text(ckpt / "config.json", "{\"model_type\": \"llama\", \"hidden_size\": 3}\n");
    return ckpt;
  }();
  return folder;
}

void write_index(const fs::path& file, const uint8_t* data, size_t size) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool written = fd >= 0;
  for (size_t done = 0; written && done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    written = n > 0;
    done += written ? static_cast<size_t>(n) : 0;
  }
  if (fd >= 0) ::close(fd);
  if (!written) {
    std::perror("fuzz_sharded_index: writing the index");
    std::abort();
  }
}

[[noreturn]] void broken_promise(const std::string& name, const char* what) {
  std::string shown;
  for (char c : name) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
  std::fprintf(stderr, "Checkpoint::open accepted the index, but '%s' %s\n", shown.c_str(), what);
  std::abort();
}

void check_accepted_checkpoint(const hfport::Checkpoint& checkpoint) {
  for (const auto& shard : checkpoint.shards()) {
    if (shard->path().find('\0') != std::string::npos) {
      broken_promise(shard->path(), "(a shard path) holds a NUL");
    }
  }
  const std::vector<std::string>& names = checkpoint.names();
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (i > 0 && !(names[i - 1] < name)) broken_promise(name, "is out of order or repeated");
    if (!checkpoint.shard_of(name).contains(name)) broken_promise(name, "is not in its shard");
    if (checkpoint.info(name).name != name) broken_promise(name, "has another tensor's info");
    const hfport::Tensor copy = checkpoint.tensor(name).clone();
    if (copy.nbytes() != checkpoint.info(name).end - checkpoint.info(name).begin) {
      broken_promise(name, "views as a different size than its data_offsets");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& folder = checkpoint_folder();
  write_index(folder / "model.safetensors.index.json", data, size);
  try {
    check_accepted_checkpoint(*hfport::Checkpoint::open(folder.string()));
  } catch (const hfport::Error&) {
  }
  return 0;
}
