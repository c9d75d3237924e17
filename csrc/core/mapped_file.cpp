#include "core/mapped_file.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/regular_file.h"

namespace hfport {

namespace {

std::string system_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path), fd_(open_regular_file(path)) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string message = system_error("cannot stat", path);
    ::close(fd_);
    throw FileError(message);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {  // mmap of length 0 is an error; an empty file maps to nothing
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      const std::string message = system_error("cannot map", path);
      ::close(fd_);
      throw FileError(message);
    }
    data_ = static_cast<std::byte*>(p);
  }
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
  ::close(fd_);
}

void MappedFile::check_size_unchanged() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw FileError(system_error("cannot stat", path_));
  const auto now = static_cast<size_t>(st.st_size);
  if (now == size_) return;
  throw FileError("'" + path_ + "' changed size since it was opened (" + std::to_string(size_) +
                  " bytes then, " + std::to_string(now) + " now): something rewrote or truncated "
                  "it, and a read past its new end would kill the process with SIGBUS. Open it "
                  "again, or open files that may change with mmap=False (FileAccess::Read), "
                  "which reads them into memory");
}

}  // namespace hfport
