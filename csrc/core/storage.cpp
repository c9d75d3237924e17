#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace hfport {

HostStorage::HostStorage(size_t size, bool zero_fill) : size_(size) {
  // aligned_alloc wants a size that is a multiple of the alignment, and a non-zero one.
  const size_t rounded = ((size + 63) / 64) * 64;
  data_ = static_cast<std::byte*>(std::aligned_alloc(64, rounded == 0 ? 64 : rounded));
  if (data_ == nullptr) throw std::bad_alloc();
  if (zero_fill) std::memset(data_, 0, size);
}

HostStorage::~HostStorage() { std::free(data_); }

}  // namespace hfport
