// Opening the files a user names (safetensors files, shards, index.json, config.json): only
// regular files are read, and anything else is refused before it can block or mislead. `open(2)`
// on a FIFO blocks until a writer appears, and an ifstream on a directory "reads" zero bytes, so
// both are checked with stat first and opened with O_NONBLOCK (a FIFO swapped in between the two
// is then caught by fstat instead of hanging).
#pragma once

#include <memory>
#include <string>

#include "core/storage.h"

namespace hfport {

// What a path is, links followed. A link loop is told apart from a missing path, since "does not
// exist" is the wrong message for a file the user can see with `ls`.
enum class PathKind { Missing, LinkLoop, Directory, RegularFile, Other };

// Never throws for a path that cannot be stat'ed: a lookup error (ELOOP apart) reads as Missing.
PathKind path_kind(const std::string& path);

// A read-only descriptor of the regular file `path` (O_CLOEXEC). Throws FileError naming the path
// when it cannot be opened or is not a regular file. The caller closes it.
int open_regular_file(const std::string& path);

// The whole content of the regular file `path`; FileError as open_regular_file, or on a read error.
std::string read_regular_file(const std::string& path);

// The same into 64-byte aligned host memory, for a checkpoint opened with FileAccess::Read. A file
// whose size changes while it is read is a FileError, never a short or mixed read.
std::shared_ptr<HostStorage> read_regular_file_to_storage(const std::string& path);

}  // namespace hfport
