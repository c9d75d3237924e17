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

}  // namespace hfport
