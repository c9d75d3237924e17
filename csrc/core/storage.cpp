#include "core/storage.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace hfport {

namespace {

// Large buffers come straight from mmap with transparent huge pages requested: a fresh 256 MB
// cast output then takes ~128 page faults instead of ~65,000, which otherwise cost more than
// the cast itself. Anonymous pages arrive zeroed.
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kMmapThreshold = size_t{4} << 20;

}  // namespace

HostStorage::HostStorage(size_t size, bool zero_fill) : size_(size) {
  if (size >= kMmapThreshold) {
    mapped_size_ = (size + kHugePage - 1) / kHugePage * kHugePage;
    void* p = ::mmap(nullptr, mapped_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, mapped_size_, MADV_HUGEPAGE);  // advice only: failure leaves 4 KB pages
    data_ = static_cast<std::byte*>(p);
    return;
  }
  // aligned_alloc wants a size that is a multiple of the alignment, and a non-zero one.
  const size_t rounded = size == 0 ? 64 : (size + 63) / 64 * 64;
  data_ = static_cast<std::byte*>(std::aligned_alloc(64, rounded));
  if (data_ == nullptr) throw std::bad_alloc();
  if (zero_fill) std::memset(data_, 0, size);
}

HostStorage::~HostStorage() {
  if (mapped_size_ != 0) {
    ::munmap(data_, mapped_size_);
  } else {
    std::free(data_);
  }
}

}  // namespace hfport
