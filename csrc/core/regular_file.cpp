#include "core/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace hfport {

namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

[[noreturn]] void throw_not_regular(const std::string& path, mode_t mode) {
  throw FileError(quoted(path) + " is " + file_type_name(mode) +
                  ", not a regular file; hfport reads only regular files");
}

[[noreturn]] void throw_system_error(const std::string& what, const std::string& path, int error) {
  if (error == ELOOP) {
    throw FileError(what + " " + quoted(path) + ": it is a symbolic link loop (" +
                    std::strerror(error) + ")");
  }
  throw FileError(what + " " + quoted(path) + ": " + std::strerror(error));
}

}  // namespace

PathKind path_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno == ELOOP ? PathKind::LinkLoop : PathKind::Missing;
  if (S_ISDIR(st.st_mode)) return PathKind::Directory;
  if (S_ISREG(st.st_mode)) return PathKind::RegularFile;
  return PathKind::Other;
}

int open_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_system_error("cannot open", path, errno);
  if (!S_ISREG(st.st_mode)) throw_not_regular(path, st.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw_system_error("cannot open", path, errno);
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw_system_error("cannot stat", path, error);
  }
  if (!S_ISREG(st.st_mode)) {  // swapped for something else since the stat above
    ::close(fd);
    throw_not_regular(path, st.st_mode);
  }
  return fd;
}

std::string read_regular_file(const std::string& path) {
  const int fd = open_regular_file(path);
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw_system_error("cannot read", path, error);
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::shared_ptr<HostStorage> read_regular_file_to_storage(const std::string& path) {
  const int fd = open_regular_file(path);
  const auto fail = [&](const std::string& message) {
    ::close(fd);
    throw FileError(message);
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot stat " + quoted(path) + ": " + std::strerror(errno));
  const auto size = static_cast<size_t>(st.st_size);
  auto storage = std::make_shared<HostStorage>(size);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, storage->data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read " + quoted(path) + ": " + std::strerror(errno));
    if (n == 0) {
      fail(quoted(path) + " shrank while it was read: " + std::to_string(size) + " bytes " +
           "expected, " + std::to_string(done) + " read");
    }
    done += static_cast<size_t>(n);
  }
  std::byte extra;
  if (::pread(fd, &extra, 1, static_cast<off_t>(size)) > 0) {
    fail(quoted(path) + " grew while it was read (it had " + std::to_string(size) + " bytes)");
  }
  ::close(fd);
  return storage;
}

}  // namespace hfport
