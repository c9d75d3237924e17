#include "core/storage.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace hfport {

namespace {

constexpr size_t kPage = 4096;

#ifndef MADV_POPULATE_WRITE
constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older kernels answer EINVAL
#endif

}  // namespace

HostStorage::HostStorage(size_t size, bool zero_fill) : size_(size) {
  // aligned_alloc wants a size that is a multiple of the alignment, and a non-zero one.
  const size_t rounded = size == 0 ? 64 : (size + 63) / 64 * 64;
  data_ = static_cast<std::byte*>(std::aligned_alloc(64, rounded));
  if (data_ == nullptr) throw std::bad_alloc();
  if (zero_fill) std::memset(data_, 0, size);
}

HostStorage::~HostStorage() { std::free(data_); }

void prefault_for_write(void* data, size_t size) {
  const auto begin = (reinterpret_cast<uintptr_t>(data) + kPage - 1) / kPage * kPage;
  const auto end = (reinterpret_cast<uintptr_t>(data) + size) / kPage * kPage;
  if (end <= begin) return;
  // Advice only: where the kernel lacks it, the pages fault in on first write as usual.
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

}  // namespace hfport
