// A whole file mapped read/write with MAP_PRIVATE: pages are shared with the page cache until
// someone writes, and a write (say, into a torch tensor exported from a checkpoint) lands in a
// private copy of that page, never in the file. Nothing is read until a page is touched.
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

 private:
  std::string path_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hfport
