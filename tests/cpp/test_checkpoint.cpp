// Checkpoint::open and SafetensorsFile::open on files written to a temp folder: a single file, a
// folder, an index with shards (and every shard rule, each with its exact error class and a message
// naming the index and the shard or tensor), pickle refusal, config.json, and the MAP_PRIVATE
// promise that writing into a view never changes the file.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/name_suggestions.h"
#include "core/safetensors_file.h"
#include "expect_error.h"
#include "test_files.h"

namespace {

using hfport::Checkpoint;
using namespace hfport_test;

TensorBytes f32_tensor(const std::string& name, std::vector<float> values) {
  return {name, "F32", {static_cast<int64_t>(values.size())}, bytes_of(values)};
}

std::vector<float> values_of(const hfport::Tensor& t) {
  EXPECT_EQ(t.dtype(), hfport::DType::F32);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.data(), out.size() * sizeof(float));
  return out;
}

// Two shards of a small model, and the index that describes them.
struct ShardedFolder {
  TempDir dir;
  std::string index_path;

  explicit ShardedFolder(const std::string& weight_map_extra = "",
                         const std::string& index_name = "model.safetensors.index.json") {
    write_safetensors(dir.path() / "model-00001-of-00002.safetensors",
                      {f32_tensor("embed.weight", {1, 2, 3, 4}), f32_tensor("layers.0.w", {5})});
    write_safetensors(dir.path() / "model-00002-of-00002.safetensors",
                      {f32_tensor("layers.1.w", {6, 7}), f32_tensor("norm.weight", {8})});
    index_path = dir / index_name;
    write_index(R"("embed.weight": "model-00001-of-00002.safetensors",
                   "layers.0.w": "model-00001-of-00002.safetensors",
                   "layers.1.w": "model-00002-of-00002.safetensors",
                   "norm.weight": "model-00002-of-00002.safetensors")" + weight_map_extra);
  }
  void write_index(const std::string& weight_map_body,
                   const std::string& metadata = R"({"total_size": 32, "format": "pt"})") const {
    write_file(index_path,
               "{\"metadata\": " + metadata + ", \"weight_map\": {" + weight_map_body + "}}");
  }
};

// ---------------------------------------------------------------------------------------------
// Single files and folders.

TEST(Checkpoint, SingleFileByPath) {
  TempDir dir;
  write_safetensors(dir.path() / "weights.safetensors",
                    {f32_tensor("b", {3, 4}), f32_tensor("a", {1, 2})}, {{"format", "pt"}});
  auto ck = Checkpoint::open(dir / "weights.safetensors");
  EXPECT_FALSE(ck->is_sharded());
  EXPECT_EQ(ck->path(), dir / "weights.safetensors");
  EXPECT_EQ(ck->names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ck->size(), 2u);
  EXPECT_TRUE(ck->contains("a"));
  EXPECT_FALSE(ck->contains("c"));
  EXPECT_EQ(values_of(ck->tensor("a")), (std::vector<float>{1, 2}));
  EXPECT_EQ(values_of(ck->tensor("b")), (std::vector<float>{3, 4}));
  EXPECT_EQ(ck->info("b").begin, 0u);  // laid out b first
  EXPECT_EQ(ck->metadata().at("format"), "pt");
  EXPECT_TRUE(ck->config().is_null());
  ASSERT_EQ(ck->shards().size(), 1u);
  EXPECT_EQ(&ck->shard_of("a"), ck->shards()[0].get());
}

TEST(Checkpoint, UnknownTensorNameIsTensorNotFound) {
  TempDir dir;
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("a", {1})});
  auto ck = Checkpoint::open(dir.path().string());
  EXPECT_TRUE(throws_exactly<hfport::TensorNotFoundError>([&] { ck->tensor("missing"); },
                                                          {"'missing'", dir.path().string()}));
  EXPECT_TRUE(throws_exactly<hfport::TensorNotFoundError>([&] { ck->info("missing"); }));
  EXPECT_TRUE(throws_exactly<hfport::TensorNotFoundError>([&] { ck->shard_of("missing"); }));
  auto file = hfport::SafetensorsFile::open(dir / "model.safetensors");
  EXPECT_TRUE(throws_exactly<hfport::TensorNotFoundError>(
      [&] { file->tensor("nope"); }, {"'nope'", "model.safetensors", "1 tensors"}));
}

TEST(Checkpoint, FolderPrefersModelSafetensors) {
  TempDir dir;
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("main", {1})});
  write_safetensors(dir.path() / "adapter.safetensors", {f32_tensor("other", {2})});
  auto ck = Checkpoint::open(dir.path().string());
  EXPECT_EQ(ck->names(), (std::vector<std::string>{"main"}));
}

TEST(Checkpoint, FolderWithOneOtherSafetensorsFile) {
  TempDir dir;
  write_safetensors(dir.path() / "diffusion_pytorch_model.safetensors", {f32_tensor("x", {9})});
  write_file(dir.path() / "README.md", std::string("not a checkpoint"));
  auto ck = Checkpoint::open(dir.path().string());
  EXPECT_EQ(values_of(ck->tensor("x")), (std::vector<float>{9}));
}

TEST(Checkpoint, FolderWithSeveralFilesAndNoIndexIsRefused) {
  TempDir dir;
  write_safetensors(dir.path() / "a.safetensors", {f32_tensor("x", {1})});
  write_safetensors(dir.path() / "b.safetensors", {f32_tensor("y", {1})});
  EXPECT_TRUE(throws_exactly<hfport::FileError>(
      [&] { Checkpoint::open(dir.path().string()); },
      {dir.path().string(), "2 safetensors files", "a.safetensors, b.safetensors", "index.json"}));
}

TEST(Checkpoint, EmptyFolderAndMissingPath) {
  TempDir dir;
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(dir.path().string()); },
                                                {dir.path().string(), "no .safetensors file"}));
  EXPECT_TRUE(throws_exactly<hfport::FileError>(
      [&] { Checkpoint::open(dir / "nothing.safetensors"); },
      {"no such file", "nothing.safetensors"}));
}

TEST(Checkpoint, HeaderErrorInAFileNamesThatFile) {
  TempDir dir;
  Bytes bytes = safetensors_bytes({f32_tensor("w", {1, 2})});
  bytes.pop_back();  // truncated
  write_file(dir.path() / "model.safetensors", bytes);
  EXPECT_TRUE(throws_exactly<hfport::FileSizeError>(
      [&] { Checkpoint::open(dir.path().string()); },
      {dir / "model.safetensors", "'w'", "truncated"}));
}

TEST(Checkpoint, ViewsAreZeroCopyAndWritesStayPrivate) {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  write_safetensors(path, {f32_tensor("w", {1, 2, 3})});
  const Bytes before = read_file(path);
  {
    auto ck = Checkpoint::open(path);
    const hfport::Tensor w = ck->tensor("w");
    const auto& mapping = ck->shards()[0]->storage();
    EXPECT_EQ(w.storage().get(), mapping.get());
    EXPECT_EQ(w.data(), mapping->data() + ck->shards()[0]->header().data_offset());
    w.data_as<float>()[1] = -100.0f;  // a consumer writing into an exported tensor
    EXPECT_EQ(ck->tensor("w").data_as<float>()[1], -100.0f);  // the same private page
    // Reopening reads the file, which never changed.
    EXPECT_EQ(values_of(Checkpoint::open(path)->tensor("w")), (std::vector<float>{1, 2, 3}));
  }
  EXPECT_EQ(read_file(path), before);
}

// Issue 12: a file truncated under a live mapping. A view handed out later would SIGBUS on its
// first read, so view() refuses it; a checkpoint read into memory does not care.
TEST(Checkpoint, AFileThatChangedSizeGivesNoNewMappedViews) {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  write_safetensors(path, {f32_tensor("a", {1, 2}), f32_tensor("w", std::vector<float>(2048, 3))});
  auto mapped = Checkpoint::open(path);
  auto read = Checkpoint::open(path, hfport::FileAccess::Read);
  EXPECT_EQ(mapped->shards()[0]->access(), hfport::FileAccess::Map);
  EXPECT_EQ(read->shards()[0]->access(), hfport::FileAccess::Read);
  EXPECT_NE(dynamic_cast<hfport::MappedFile*>(mapped->shards()[0]->storage().get()), nullptr);
  EXPECT_EQ(dynamic_cast<hfport::MappedFile*>(read->shards()[0]->storage().get()), nullptr);
  const auto size = fs::file_size(path);
  fs::resize_file(path, 100);
  EXPECT_TRUE(throws_exactly<hfport::FileError>(
      [&] { mapped->tensor("w"); },
      {"'" + path + "' changed size since it was opened (" + std::to_string(size) +
           " bytes then, 100 now)", "SIGBUS", "mmap=False"}));
  EXPECT_EQ(values_of(read->tensor("a")), (std::vector<float>{1, 2}));
  EXPECT_EQ(values_of(read->tensor("w")), std::vector<float>(2048, 3));
  // The same size again (rewritten in place) is not detectable by size, and not refused.
  fs::resize_file(path, size);
  EXPECT_EQ(mapped->tensor("a").numel(), 2);
}

TEST(Checkpoint, ReadAccessOpensShardsIntoMemoryToo) {
  TempDir dir;
  write_safetensors(dir.path() / "model-1.safetensors", {f32_tensor("a", {1, 2})});
  write_safetensors(dir.path() / "model-2.safetensors", {f32_tensor("b", {3})});
  write_file(dir.path() / "model.safetensors.index.json",
             std::string(R"({"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})"));
  auto ck = Checkpoint::open(dir.path().string(), hfport::FileAccess::Read);
  for (const auto& shard : ck->shards()) EXPECT_EQ(shard->access(), hfport::FileAccess::Read);
  fs::resize_file(dir.path() / "model-2.safetensors", 0);
  EXPECT_EQ(values_of(ck->tensor("b")), (std::vector<float>{3}));
}

TEST(Checkpoint, ViewKeepsTheMappingAliveAfterTheCheckpointIsGone) {
  TempDir dir;
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {4, 5})});
  hfport::Tensor w;
  {
    auto ck = Checkpoint::open(dir.path().string());
    w = ck->tensor("w");
  }
  EXPECT_EQ(values_of(w), (std::vector<float>{4, 5}));
}

TEST(Checkpoint, CloseRefusesAccessButKeepsViewsValid) {
  ShardedFolder folder;
  auto ck = Checkpoint::open(folder.index_path);
  const hfport::Tensor embed = ck->tensor("embed.weight");
  ck->close();
  EXPECT_TRUE(ck->closed());
  const auto closed = [&](auto access) {
    return throws_exactly<hfport::CheckpointClosedError>(access,
                                                         {folder.index_path, "is closed"});
  };
  EXPECT_TRUE(closed([&] { ck->tensor("norm.weight"); }));
  EXPECT_TRUE(closed([&] { ck->names(); }));
  EXPECT_TRUE(closed([&] { ck->contains("x"); }));
  EXPECT_TRUE(closed([&] { ck->shards(); }));
  EXPECT_TRUE(closed([&] { ck->metadata(); }));
  EXPECT_EQ(values_of(embed), (std::vector<float>{1, 2, 3, 4}));
  ck->close();  // again: nothing more to drop
}

TEST(Checkpoint, MissingNameSuggestsTheClosestAcrossShards) {
  ShardedFolder folder;
  auto ck = Checkpoint::open(folder.index_path);
  EXPECT_TRUE(throws_exactly<hfport::TensorNotFoundError>(
      [&] { ck->tensor("layers.2.w"); }, {"did you mean 'layers.0.w', 'layers.1.w'?"}));
  EXPECT_TRUE(throws_exactly<hfport::TensorNotFoundError>(
      [&] { ck->info("model.norm.weight"); }, {"did you mean 'norm.weight'?"}));
  try {
    ck->tensor("lm_head.bias");
    ADD_FAILURE() << "no throw";
  } catch (const hfport::TensorNotFoundError& e) {
    EXPECT_EQ(std::string(e.what()).find("did you mean"), std::string::npos) << e.what();
  }
}

TEST(NameSuggestions, EditDistanceAndPrefixRule) {
  EXPECT_EQ(hfport::edit_distance("kitten", "sitting", 10), 3u);
  EXPECT_EQ(hfport::edit_distance("kitten", "sitting", 2), 3u);  // stopped past the limit
  EXPECT_EQ(hfport::name_distance("wte.weight", "transformer.wte.weight"), 0u);
  EXPECT_GT(hfport::name_distance("te.weight", "transformer.wte.weight"), 0u);
  const std::vector<std::string> names = {"b.weight", "a.weight", "a.wieght", "zzz"};
  // a.wieght is 4 edits away, past the limit of max(3, 8 / 3).
  EXPECT_EQ(hfport::closest_names("a.weigth", names),
            (std::vector<std::string>{"a.weight", "b.weight"}));
  EXPECT_EQ(hfport::closest_names("a.weigth", names, 1), (std::vector<std::string>{"a.weight"}));
  EXPECT_TRUE(hfport::closest_names("something.else.entirely", names).empty());
}

// ---------------------------------------------------------------------------------------------
// Pickle checkpoints are never unpickled.

TEST(CheckpointPickle, PickleExtensionsAreRefusedWithAConversionHint) {
  TempDir dir;
  for (const char* name :
       {"pytorch_model.bin", "model.pt", "model.pth", "last.ckpt", "state.pkl"}) {
    SCOPED_TRACE(name);
    const std::string path = dir / name;
    write_file(path, std::string("\x80\x02}q\x00.", 6));
    EXPECT_TRUE(throws_exactly<hfport::UnsupportedFormatError>(
        [&] { Checkpoint::open(path); }, {path, "pickle", "hfport convert-pickle", "safetensors"}));
    EXPECT_TRUE(throws_exactly<hfport::UnsupportedFormatError>(
        [&] { hfport::SafetensorsFile::open(path); }, {path, "never unpickles"}));
  }
  // Refused by name even when the file does not exist: nothing is opened.
  EXPECT_TRUE(throws_exactly<hfport::UnsupportedFormatError>(
      [&] { Checkpoint::open(dir / "absent.bin"); }, {"absent.bin", "pickle"}));
}

TEST(CheckpointPickle, PickleContentUnderASafetensorsNameIsRefused) {
  TempDir dir;
  const std::string zip = dir / "zip.safetensors";
  write_file(zip, std::string("PK\x03\x04" "archive/data.pkl", 20));
  EXPECT_TRUE(throws_exactly<hfport::UnsupportedFormatError>([&] { Checkpoint::open(zip); },
                                                             {zip, "torch zip"}));
  for (int protocol = 2; protocol <= 5; ++protocol) {
    const std::string path = dir / ("protocol" + std::to_string(protocol) + ".safetensors");
    std::string pickle = "\x80";
    pickle += static_cast<char>(protocol);
    pickle.append("}q\x00.", 4);
    write_file(path, pickle);
    EXPECT_TRUE(throws_exactly<hfport::UnsupportedFormatError>(
        [&] { hfport::SafetensorsFile::open(path); }, {path, "pickle"}))
        << protocol;
  }
}

// Issue 12, defect 1: the first bytes of a safetensors file are its header length, and lengths
// such as 640 (0x80 0x02 ...) or 67,324,752 ("PK\x03\x04") spell a pickle or zip magic. Every
// header length up to 1 MiB + 1 is tried: none may be taken for a pickle.
TEST(CheckpointPickle, NoHeaderLengthIsTakenForAPickle) {
  constexpr uint64_t kLongest = (uint64_t{1} << 20) + 1;
  Bytes file(8 + kLongest, ' ');
  file[8] = '{';
  for (uint64_t n = 1; n <= kLongest; ++n) {
    for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(n >> (8 * i));
    if (hfport::looks_like_pickle(reinterpret_cast<const std::byte*>(file.data()), 8 + n)) {
      FAIL() << "a file with header length " << n << " is taken for a pickle";
    }
  }
  // The zip magic as a length: 67,324,752 bytes of header.
  const uint64_t zip_length = 0x04034b50;
  Bytes zip(8 + zip_length, ' ');
  for (int i = 0; i < 8; ++i) zip[i] = static_cast<uint8_t>(zip_length >> (8 * i));
  zip[8] = '{';
  EXPECT_FALSE(hfport::looks_like_pickle(reinterpret_cast<const std::byte*>(zip.data()), zip.size()));
}

TEST(CheckpointPickle, FilesWhoseHeaderLengthSpellsAPickleMagicOpen) {
  TempDir dir;
  // Header lengths whose low bytes are 0x80 0x02..0x05, and the same 64 KiB further on.
  for (const uint64_t length : {640, 896, 1152, 1408, 65536 + 640, 65536 + 1408}) {
    SCOPED_TRACE(length);
    std::string header = safetensors_header_json({f32_tensor("w", {1.5f, -2})});
    header.resize(length, ' ');  // safetensors pads its header with spaces too
    const std::string path = dir / (std::to_string(length) + ".safetensors");
    write_file(path, safetensors_file_bytes(header, bytes_of(std::vector<float>{1.5f, -2})));
    const auto ck = Checkpoint::open(path);
    EXPECT_EQ(ck->shards()[0]->header().header_size, length);
    EXPECT_EQ(values_of(ck->tensor("w")), (std::vector<float>{1.5f, -2}));
  }
}

TEST(CheckpointPickle, FolderWithOnlyPickleIsRefused) {
  TempDir dir;
  write_file(dir.path() / "pytorch_model.bin", std::string("PK\x03\x04", 4));
  write_file(dir.path() / "config.json", std::string(R"({"model_type": "llama"})"));
  EXPECT_TRUE(throws_exactly<hfport::UnsupportedFormatError>(
      [&] { Checkpoint::open(dir.path().string()); },
      {dir.path().string(), "only pickle", "pytorch_model.bin", "hfport convert-pickle"}));
}

TEST(CheckpointPickle, FolderWithBothUsesSafetensors) {
  TempDir dir;
  write_file(dir.path() / "pytorch_model.bin", std::string("PK\x03\x04", 4));
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {1})});
  EXPECT_EQ(Checkpoint::open(dir.path().string())->names(), (std::vector<std::string>{"w"}));
}

// ---------------------------------------------------------------------------------------------
// config.json

TEST(CheckpointConfig, ReadBesideAFolderOrAFile) {
  TempDir dir;
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {1})});
  write_file(dir.path() / "config.json",
             std::string(R"({"model_type": "llama", "hidden_size": 4096, "rope_scaling": null})"));
  for (const std::string& path : {dir.path().string(), dir / "model.safetensors"}) {
    auto ck = Checkpoint::open(path);
    ASSERT_TRUE(ck->config().is_object()) << path;
    EXPECT_EQ(ck->config()["model_type"], "llama");
    EXPECT_EQ(ck->config()["hidden_size"], 4096);
    EXPECT_TRUE(ck->config()["rope_scaling"].is_null());
  }
}

TEST(CheckpointConfig, BadConfigIsAConfigError) {
  struct Case {
    std::string text;
    std::string needle;
  };
  const Case cases[] = {{"{\"a\": ", "config.json"},
                        {"[1, 2]", "JSON object"},
                        {"\"llama\"", "JSON object"},
                        {R"({"a": 1, "a": 2})", "duplicate key 'a'"},
                        {"{\"a\": \"\xff\"}", "UTF-8"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    TempDir dir;
    write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {1})});
    write_file(dir.path() / "config.json", c.text);
    EXPECT_TRUE(throws_exactly<hfport::ConfigError>([&] { Checkpoint::open(dir.path().string()); },
                                                    {dir / "config.json", c.needle}));
  }
}

// Issue 12, defect 3 and its neighbours: paths that are not regular files are refused at once,
// saying what they are. A FIFO would block open(2) until a writer appears.
TEST(CheckpointFiles, FifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir / "model.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(fifo); },
                                                {fifo, "FIFO", "not a regular file"}));
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(dir.path().string()); },
                                                {fifo, "FIFO"}));
}

TEST(CheckpointFiles, FifoConfigIsRefusedWithoutBlocking) {
  TempDir dir;
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {1})});
  const std::string fifo = dir / "config.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(dir.path().string()); },
                                                {fifo, "FIFO"}));
}

TEST(CheckpointFiles, ConfigThatIsAFolderSaysSo) {
  TempDir dir;
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {1})});
  fs::create_directory(dir.path() / "config.json");
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(dir.path().string()); },
                                                {dir / "config.json", "is a directory"}));
}

TEST(CheckpointFiles, SymlinkLoopIsNotCalledMissing) {
  TempDir dir;
  fs::create_symlink("loop.safetensors", dir.path() / "loop.safetensors");
  EXPECT_TRUE(throws_exactly<hfport::FileError>(
      [&] { Checkpoint::open(dir / "loop.safetensors"); }, {"loop.safetensors", "link loop"}));
  write_safetensors(dir.path() / "model.safetensors", {f32_tensor("w", {1})});
  fs::create_symlink("config.json", dir.path() / "config.json");
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(dir.path().string()); },
                                                {"config.json", "link loop"}));
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints.

TEST(CheckpointShards, IndexJoinsTheShards) {
  ShardedFolder folder;
  for (const std::string& path : {folder.dir.path().string(), folder.index_path}) {
    SCOPED_TRACE(path);
    auto ck = Checkpoint::open(path);
    EXPECT_TRUE(ck->is_sharded());
    EXPECT_EQ(ck->names(), (std::vector<std::string>{"embed.weight", "layers.0.w", "layers.1.w",
                                                      "norm.weight"}));
    ASSERT_EQ(ck->shards().size(), 2u);
    EXPECT_EQ(values_of(ck->tensor("embed.weight")), (std::vector<float>{1, 2, 3, 4}));
    EXPECT_EQ(values_of(ck->tensor("layers.1.w")), (std::vector<float>{6, 7}));
    EXPECT_EQ(values_of(ck->tensor("norm.weight")), (std::vector<float>{8}));
    EXPECT_NE(ck->shard_of("layers.1.w").path().find("model-00002-of-00002"), std::string::npos);
    EXPECT_NE(ck->shard_of("layers.0.w").path().find("model-00001-of-00002"), std::string::npos);
    EXPECT_EQ(ck->metadata().at("total_size"), "32");  // a non-string value, as JSON text
    EXPECT_EQ(ck->metadata().at("format"), "pt");
  }
}

TEST(CheckpointShards, OtherIndexNameIsFoundInTheFolder) {
  ShardedFolder folder("", "diffusion_pytorch_model.safetensors.index.json");
  EXPECT_EQ(Checkpoint::open(folder.dir.path().string())->size(), 4u);
}

TEST(CheckpointShards, SeveralIndexesAreAmbiguous) {
  ShardedFolder folder("", "a.safetensors.index.json");
  write_file(folder.dir.path() / "b.safetensors.index.json", read_file(folder.index_path));
  EXPECT_TRUE(throws_exactly<hfport::FileError>(
      [&] { Checkpoint::open(folder.dir.path().string()); },
      {"several index files", "a.safetensors.index.json, b.safetensors.index.json"}));
}

TEST(CheckpointShards, ShardsInASubfolderAreAllowed) {
  TempDir dir;
  write_safetensors(dir.path() / "weights" / "part.safetensors", {f32_tensor("w", {2})});
  write_file(dir.path() / "model.safetensors.index.json",
             std::string(R"({"weight_map": {"w": "weights/part.safetensors"}})"));
  auto ck = Checkpoint::open(dir.path().string());
  EXPECT_EQ(values_of(ck->tensor("w")), (std::vector<float>{2}));
  EXPECT_TRUE(ck->metadata().empty());
}

TEST(CheckpointShards, AbsoluteShardPath) {
  ShardedFolder folder;
  TempDir elsewhere;
  write_safetensors(elsewhere.path() / "x.safetensors", {f32_tensor("x", {1})});
  const std::string absolute = elsewhere / "x.safetensors";
  folder.write_index("\"x\": \"" + absolute + "\"");
  EXPECT_TRUE(throws_exactly<hfport::ShardPathError>(
      [&] { Checkpoint::open(folder.dir.path().string()); },
      {folder.index_path, "'" + absolute + "'", "relative path inside the checkpoint folder"}));
}

TEST(CheckpointShards, DotDotInShardPath) {
  ShardedFolder folder;
  for (const std::string shard : {"../x.safetensors", "sub/../../x.safetensors",
                                  "sub/../model-00001-of-00002.safetensors", ".."}) {
    SCOPED_TRACE(shard);
    folder.write_index("\"embed.weight\": \"" + shard + "\"");
    EXPECT_TRUE(throws_exactly<hfport::ShardPathError>(
        [&] { Checkpoint::open(folder.index_path); },
        {folder.index_path, "'" + shard + "'", "'..'"}));
  }
}

TEST(CheckpointShards, EmptyShardPath) {
  ShardedFolder folder;
  folder.write_index(R"("embed.weight": "")");
  EXPECT_TRUE(throws_exactly<hfport::ShardPathError>([&] { Checkpoint::open(folder.index_path); },
                                                     {folder.index_path, "''"}));
}

TEST(CheckpointShards, SymlinkOutOfTheFolder) {
  ShardedFolder folder;
  TempDir elsewhere;
  write_safetensors(elsewhere.path() / "x.safetensors", {f32_tensor("x", {1})});
  std::filesystem::create_symlink(elsewhere.path() / "x.safetensors",
                                  folder.dir.path() / "link.safetensors");
  folder.write_index(R"("x": "link.safetensors")");
  EXPECT_TRUE(throws_exactly<hfport::ShardPathError>(
      [&] { Checkpoint::open(folder.index_path); },
      {folder.index_path, "'link.safetensors'", "outside the checkpoint folder",
       std::filesystem::canonical(elsewhere.path() / "x.safetensors").string()}));

  // A folder whose name extends the checkpoint folder's is still outside it.
  const std::string sibling = folder.dir.path().string() + "-sibling";
  std::filesystem::create_directories(sibling);
  write_safetensors(sibling + "/y.safetensors", {f32_tensor("y", {1})});
  std::filesystem::create_symlink(sibling + "/y.safetensors", folder.dir.path() / "y.safetensors");
  folder.write_index(R"("y": "y.safetensors")");
  EXPECT_TRUE(throws_exactly<hfport::ShardPathError>([&] { Checkpoint::open(folder.index_path); },
                                                     {"outside the checkpoint folder"}));
  std::filesystem::remove_all(sibling);
}

TEST(CheckpointShards, SymlinkInsideTheFolderIsAllowed) {
  ShardedFolder folder;
  std::filesystem::create_symlink("model-00002-of-00002.safetensors",
                                  folder.dir.path() / "alias.safetensors");
  folder.write_index(R"("embed.weight": "model-00001-of-00002.safetensors",
                        "layers.0.w": "model-00001-of-00002.safetensors",
                        "layers.1.w": "alias.safetensors",
                        "norm.weight": "alias.safetensors")");
  EXPECT_EQ(values_of(Checkpoint::open(folder.index_path)->tensor("norm.weight")),
            (std::vector<float>{8}));
}

TEST(CheckpointShards, FifoShardIsRefusedWithoutBlocking) {
  ShardedFolder folder;
  const std::string shard = folder.dir / "model-00002-of-00002.safetensors";
  fs::remove(shard);
  ASSERT_EQ(::mkfifo(shard.c_str(), 0600), 0);
  EXPECT_TRUE(throws_exactly<hfport::FileError>([&] { Checkpoint::open(folder.index_path); },
                                                {shard, "FIFO"}));
}

TEST(CheckpointShards, ShardLinkLoop) {
  ShardedFolder folder;
  const fs::path shard = folder.dir.path() / "model-00002-of-00002.safetensors";
  fs::remove(shard);
  fs::create_symlink(shard.filename(), shard);
  EXPECT_TRUE(throws_exactly<hfport::ShardPathError>(
      [&] { Checkpoint::open(folder.index_path); },
      {folder.index_path, "'model-00002-of-00002.safetensors'", "symbolic link loop"}));
}

// Issue 12, defect 5: the OS reads a path only up to a NUL, so "a\0.evil" would open "a". Such a
// name is refused, and the message shows it whole (a NUL would end what() there).
TEST(CheckpointShards, ControlCharactersInShardPath) {
  ShardedFolder folder;
  for (const std::string& escaped : {std::string("\\u0000.evil"), std::string("\\n"),
                                     std::string("\\u001f"), std::string("\\u007f")}) {
    SCOPED_TRACE(escaped);
    folder.write_index(R"("embed.weight": "model-00001-of-00002.safetensors)" + escaped + R"(",
                          "layers.0.w": "model-00001-of-00002.safetensors",
                          "layers.1.w": "model-00002-of-00002.safetensors",
                          "norm.weight": "model-00002-of-00002.safetensors")");
    EXPECT_TRUE(throws_exactly<hfport::ShardPathError>(
        [&] { Checkpoint::open(folder.index_path); },
        {folder.index_path, "'model-00001-of-00002.safetensors\\x", "control character at byte 32"}));
  }
  folder.write_index(R"("embed.weight": "model-00001-of-00002.safetensors\u0000.evil")");
  try {
    Checkpoint::open(folder.index_path);
    FAIL() << "opened";
  } catch (const hfport::ShardPathError& e) {
    EXPECT_NE(std::string(e.what()).find("safetensors\\x00.evil'"), std::string::npos) << e.what();
  }
}

TEST(CheckpointShards, MissingShard) {
  ShardedFolder folder(R"(, "extra.weight": "model-00003-of-00003.safetensors")");
  EXPECT_TRUE(throws_exactly<hfport::MissingShardError>(
      [&] { Checkpoint::open(folder.dir.path().string()); },
      {folder.index_path, "'model-00003-of-00003.safetensors'", "does not exist"}));
}

TEST(CheckpointShards, TensorTheIndexNamesIsNotInItsShard) {
  ShardedFolder folder(R"(, "lm_head.weight": "model-00002-of-00002.safetensors")");
  EXPECT_TRUE(throws_exactly<hfport::ShardTensorMissingError>(
      [&] { Checkpoint::open(folder.index_path); },
      {folder.index_path, "'lm_head.weight'", "'model-00002-of-00002.safetensors'",
       "no such tensor"}));
}

TEST(CheckpointShards, TensorInTheWrongShard) {
  ShardedFolder folder;
  folder.write_index(R"("embed.weight": "model-00002-of-00002.safetensors",
                        "layers.0.w": "model-00001-of-00002.safetensors",
                        "layers.1.w": "model-00002-of-00002.safetensors",
                        "norm.weight": "model-00002-of-00002.safetensors")");
  EXPECT_TRUE(throws_exactly<hfport::ShardTensorMissingError>(
      [&] { Checkpoint::open(folder.index_path); },
      {"'embed.weight'", "'model-00002-of-00002.safetensors'"}));
}

TEST(CheckpointShards, ShardTensorTheIndexDoesNotList) {
  ShardedFolder folder;
  folder.write_index(R"("embed.weight": "model-00001-of-00002.safetensors",
                        "layers.0.w": "model-00001-of-00002.safetensors",
                        "layers.1.w": "model-00002-of-00002.safetensors")");
  EXPECT_TRUE(throws_exactly<hfport::ShardIndexError>(
      [&] { Checkpoint::open(folder.index_path); },
      {folder.index_path, "'norm.weight'", "model-00002-of-00002.safetensors", "does not list"}));
}

TEST(CheckpointShards, TensorInTwoShards) {
  ShardedFolder folder;
  write_safetensors(folder.dir.path() / "model-00002-of-00002.safetensors",
                    {f32_tensor("layers.1.w", {6, 7}), f32_tensor("norm.weight", {8}),
                     f32_tensor("layers.0.w", {5})});
  EXPECT_TRUE(throws_exactly<hfport::DuplicateTensorError>(
      [&] { Checkpoint::open(folder.index_path); },
      {folder.index_path, "'layers.0.w'", "two shards", "model-00001-of-00002.safetensors",
       "model-00002-of-00002.safetensors"}));
}

TEST(CheckpointShards, MalformedIndex) {
  struct Case {
    std::string text;
    std::string needle;
  };
  const Case cases[] = {
      {"{\"weight_map\": ", "index.json"},
      {"[]", "weight_map"},
      {R"({"metadata": {}})", "weight_map"},
      {R"({"weight_map": []})", "weight_map"},
      {R"({"weight_map": {"a": 3}})", "weight_map['a']"},
      {R"({"weight_map": {"a": null}})", "found null"},
      {R"({"metadata": [], "weight_map": {}})", "\"metadata\" must be an object"},
      {R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})", "duplicate key 'a'"},
      {"{\"weight_map\": {\"\xc3\x28\": \"x\"}}", "UTF-8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    TempDir dir;
    write_file(dir.path() / "model.safetensors.index.json", c.text);
    EXPECT_TRUE(throws_exactly<hfport::ShardIndexError>(
        [&] { Checkpoint::open(dir.path().string()); },
        {dir / "model.safetensors.index.json", c.needle}));
  }
}

TEST(CheckpointShards, HeaderErrorInAShardNamesTheShard) {
  ShardedFolder folder;
  Bytes bytes = read_file(folder.dir.path() / "model-00002-of-00002.safetensors");
  bytes.push_back(0);  // one trailing byte
  write_file(folder.dir.path() / "model-00002-of-00002.safetensors", bytes);
  EXPECT_TRUE(throws_exactly<hfport::FileSizeError>(
      [&] { Checkpoint::open(folder.index_path); },
      {"model-00002-of-00002.safetensors", "1 trailing bytes"}));
}

TEST(CheckpointShards, ConfigBesideTheIndex) {
  ShardedFolder folder;
  write_file(folder.dir.path() / "config.json", std::string(R"({"num_hidden_layers": 2})"));
  EXPECT_EQ(Checkpoint::open(folder.index_path)->config()["num_hidden_layers"], 2);
  EXPECT_EQ(Checkpoint::open(folder.dir.path().string())->config()["num_hidden_layers"], 2);
}

}  // namespace
