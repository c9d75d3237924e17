// A whole file mapped read/write with MAP_PRIVATE: pages are shared with the page cache until
// someone writes, and a write (say, into a torch tensor exported from a checkpoint) lands in a
// private copy of that page, never in the file. Nothing is read until a page is touched.
//
// A file truncated under a live mapping kills the reader with SIGBUS on the first touch of a page
// past the new end (as it does numpy's memmap and safetensors). The descriptor is kept open so
// that `check_size_unchanged` can notice the change before a new view is handed out; a view
// taken earlier cannot be protected (docs/decisions.md, "A file that changes under its mapping").
#pragma once

#include <string>

#include "core/storage.h"

namespace hfport {

class MappedFile final : public Storage {
 public:
  // Throws FileError naming the path and the system error, or saying what the path is when it
  // is not a regular file (a FIFO is refused without blocking: regular_file.h).
  explicit MappedFile(const std::string& path);
  ~MappedFile() override;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::byte* data() const override { return data_; }
  size_t size() const override { return size_; }
  const std::string& path() const { return path_; }

  // Throws FileError when the file's size is no longer the size it had when it was mapped.
  void check_size_unchanged() const;

 private:
  std::string path_;
  int fd_ = -1;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hfport
