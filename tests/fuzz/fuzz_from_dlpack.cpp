// Fuzzes from_dlpack and to_dlpack (core/dlpack_bridge.h) with DLManagedTensors and DLPack 1.x
// DLManagedTensorVersioneds described by the input, as a careless or hostile producer might hand
// them over.
//
// Input layout, little-endian, read from the front (bytes past the end read as zero):
//
//   offset  size  field
//        0     1  ndim: (byte % 8) - 1, so -1..6
//        1     1  dtype.code
//        2     1  dtype.bits
//        3     2  dtype.lanes
//        5     1  device.device_type: byte % 16, the values C++ lets DLDeviceType hold
//        6     4  device.device_id
//       10     1  flags: 1 strides follow the shape (else strides is null), 2 data is null when a
//                 dimension is 0, 4 free the re-export with its deleter instead of importing it,
//                 8 hand it over as a DLManagedTensorVersioned (and re-export it so), 16 with
//                 the READ_ONLY flag, 32 claiming major version 2 (which must be refused)
//       11     8  byte_offset
//       19     2  where data points in the buffer (taken modulo the buffer's size + 1)
//       21  8*nd  shape, int64 each
//        .  8*nd  strides, int64 each, when flag 1 is set
//        .     .  the rest: the buffer's bytes, in an allocation of exactly that size
//
// make_corpus.py writes seeds in this layout from real torch tensors.
//
// A bug is a crash, a sanitizer report, a hang, an exception that is not an hfport::Error, the
// producer's deleter running other than exactly once (it is counted; the buffer and the shape
// arrays are freed in it, so a read after it is an ASan report), or an accepted tensor with a
// negative dimension, which every later shape computation would trust, a versioned struct of
// another major version accepted, or a READ_ONLY flag lost on the way in or out. When the
// description is honest (a host tensor whose every element lies inside the buffer, or an empty
// one), the tensor must also point at its first element and copy out the bytes the harness reads
// along the strides.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/dlpack.h"
#include "core/dlpack_bridge.h"
#include "core/error.h"
#include "core/tensor.h"

namespace {

class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  template <typename T>
  T read() {
    uint64_t bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i, ++pos_) {
      const uint64_t byte = pos_ < size_ ? data_[pos_] : 0;
      bits |= byte << (8 * i);
    }
    return static_cast<T>(bits);
  }
  const uint8_t* rest() const { return data_ + std::min(pos_, size_); }
  size_t rest_size() const { return size_ - std::min(pos_, size_); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

enum Flag : uint8_t {
  kStridesGiven = 1,
  kNullDataWhenEmpty = 2,
  kFreeReexport = 4,
  kVersioned = 8,
  kReadOnly = 16,
  kMajorTwo = 32,
};

// What the producer owns, all freed by its deleter.
struct Producer {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  std::unique_ptr<std::byte[]> buffer;
  size_t buffer_size = 0;
};

int deleter_calls = 0;

template <typename Managed>
void delete_producer(Managed* managed) {
  ++deleter_calls;
  delete static_cast<Producer*>(managed->manager_ctx);
  delete managed;
}

[[noreturn]] void broken_promise(const char* what) {
  std::fprintf(stderr, "from_dlpack/to_dlpack broke a promise: %s\n", what);
  std::abort();
}

// Where the described elements lie, in bytes from the buffer's start, worked out in 128 bits so
// that any int64 shape and strides are safe here. `checkable` when the description is honest and
// small: a host tensor with no negative dimension, at most kMaxCheckedBytes of elements, all of
// them inside the buffer (or none at all).
struct Reach {
  bool checkable = false;
  bool empty = false;
  __int128 first = 0;  // the element at index (0, ..., 0)
  std::vector<__int128> strides;
};

constexpr __int128 kMaxCheckedBytes = 1 << 16;

Reach reach_of(const DLTensor& dl, const Producer& producer, bool data_null, int64_t item) {
  Reach reach;
  const bool host = dl.device.device_type == kDLCPU || dl.device.device_type == kDLCUDAHost;
  if (!host || dl.ndim < 0) return reach;
  __int128 numel = 1;
  for (int i = 0; i < dl.ndim; ++i) {
    if (dl.shape[i] < 0) return reach;
    reach.empty |= dl.shape[i] == 0;
    numel = std::min<__int128>(numel * dl.shape[i], kMaxCheckedBytes + 1);
  }
  if (reach.empty) {
    reach.checkable = true;
    return reach;
  }
  if (data_null || numel * item > kMaxCheckedBytes) return reach;
  // Every dimension is now at most 2^16 long, so the compact strides and the spans fit.
  reach.strides.assign(dl.ndim, 1);
  for (int i = dl.ndim - 1; i >= 0; --i) {
    if (dl.strides) {
      reach.strides[i] = dl.strides[i];
    } else if (i + 1 < dl.ndim) {
      reach.strides[i] = reach.strides[i + 1] * dl.shape[i + 1];
    }
  }
  __int128 lowest = 0, highest = 0;
  for (int i = 0; i < dl.ndim; ++i) {
    const __int128 span = (dl.shape[i] - 1) * reach.strides[i];
    (span < 0 ? lowest : highest) += span;
  }
  const auto* data = static_cast<const std::byte*>(dl.data);
  reach.first = (data - producer.buffer.get()) + static_cast<__int128>(dl.byte_offset);
  const auto buffer_size = static_cast<__int128>(producer.buffer_size);
  reach.checkable = reach.first + lowest * item >= 0 &&
                    reach.first + (highest + 1) * item <= buffer_size;
  return reach;
}

// An honest, non-empty tensor must point at its first element and copy out, element by element,
// what the harness reads along the same strides itself.
void check_elements(const hfport::Tensor& tensor, const Reach& reach, const Producer& producer) {
  const int64_t item = static_cast<int64_t>(hfport::dtype_size(tensor.dtype()));
  if (tensor.data() != producer.buffer.get() + static_cast<ptrdiff_t>(reach.first)) {
    broken_promise("the tensor does not point at its first element");
  }
  const hfport::Tensor copy = tensor.clone();
  std::vector<int64_t> index(tensor.ndim(), 0);
  for (int64_t k = 0; k < tensor.numel(); ++k) {
    __int128 offset = reach.first;
    for (size_t d = 0; d < index.size(); ++d) offset += index[d] * reach.strides[d] * item;
    if (std::memcmp(copy.data() + k * item, producer.buffer.get() + static_cast<ptrdiff_t>(offset),
                    static_cast<size_t>(item)) != 0) {
      broken_promise("the contiguous copy differs from a strided read of the buffer");
    }
    for (int64_t d = tensor.ndim() - 1; d >= 0; --d) {
      if (++index[d] < tensor.shape()[d]) break;
      index[d] = 0;
    }
  }
}

// to_dlpack (or to_dlpack_versioned), then from_dlpack on its result (or its own deleter): the
// same view must come back. An empty tensor's strides address nothing, so only a non-empty one
// must keep them.
template <typename Managed>
void check_round_trip(const hfport::Tensor& tensor, bool free_reexport) {
  Managed* exported = nullptr;
  try {
    if constexpr (std::is_same_v<Managed, DLManagedTensorVersioned>) {
      exported = hfport::to_dlpack_versioned(tensor);
      const bool flagged = (exported->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0;
      if (flagged != tensor.storage()->read_only()) {
        exported->deleter(exported);
        broken_promise("to_dlpack_versioned's READ_ONLY flag differs from the storage's");
      }
    } else {
      exported = hfport::to_dlpack(tensor);
    }
  } catch (const hfport::Error&) {
    return;  // negative strides, refused by design
  }
  const DLTensor& dl = exported->dl_tensor;
  const bool empty = tensor.numel() == 0;
  if (dl.ndim != tensor.ndim() || dl.data != tensor.data() || dl.byte_offset != 0 ||
      !std::equal(tensor.shape().begin(), tensor.shape().end(), dl.shape) ||
      (!empty && !std::equal(tensor.strides().begin(), tensor.strides().end(), dl.strides))) {
    broken_promise("to_dlpack describes another view than the tensor's");
  }
  if (free_reexport) {
    exported->deleter(exported);
    return;
  }
  hfport::Tensor again;
  try {
    again = hfport::from_dlpack(exported);
  } catch (const hfport::Error&) {
    broken_promise("from_dlpack refuses what to_dlpack made");
  }
  if (again.dtype() != tensor.dtype() || again.shape() != tensor.shape() ||
      (!empty && again.strides() != tensor.strides()) || again.data() != tensor.data() ||
      again.device() != tensor.device() ||
      again.storage()->read_only() != tensor.storage()->read_only()) {
    broken_promise("a to_dlpack/from_dlpack round trip changes the view");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputReader in(data, size);
  auto* producer = new Producer;
  DLTensor dl{};

  dl.ndim = static_cast<int32_t>(in.read<uint8_t>() % 8) - 1;
  dl.dtype.code = in.read<uint8_t>();
  dl.dtype.bits = in.read<uint8_t>();
  dl.dtype.lanes = in.read<uint16_t>();
  dl.device.device_type = static_cast<DLDeviceType>(in.read<uint8_t>() % 16);
  dl.device.device_id = in.read<int32_t>();
  const uint8_t flags = in.read<uint8_t>();
  dl.byte_offset = in.read<uint64_t>();
  const uint16_t data_start = in.read<uint16_t>();
  bool has_zero_dim = false;
  for (int i = 0; i < dl.ndim; ++i) {
    producer->shape.push_back(in.read<int64_t>());
    has_zero_dim |= producer->shape.back() == 0;
  }
  if (flags & kStridesGiven) {
    for (int i = 0; i < dl.ndim; ++i) producer->strides.push_back(in.read<int64_t>());
  }
  producer->buffer_size = in.rest_size();
  producer->buffer = std::make_unique<std::byte[]>(producer->buffer_size);
  if (producer->buffer_size > 0) std::memcpy(producer->buffer.get(), in.rest(), in.rest_size());

  const bool data_null = (flags & kNullDataWhenEmpty) && has_zero_dim;
  dl.data = data_null ? nullptr
                      : producer->buffer.get() + data_start % (producer->buffer_size + 1);
  dl.shape = producer->shape.data();
  dl.strides = (flags & kStridesGiven) ? producer->strides.data() : nullptr;

  const bool versioned = flags & kVersioned;
  DLManagedTensor* legacy = nullptr;
  DLManagedTensorVersioned* current = nullptr;
  if (versioned) {
    current = new DLManagedTensorVersioned{};
    current->version = {(flags & kMajorTwo) ? 2u : 1u, 0};
    current->flags = (flags & kReadOnly) ? DLPACK_FLAG_BITMASK_READ_ONLY : 0;
    current->manager_ctx = producer;
    current->deleter = delete_producer<DLManagedTensorVersioned>;
    current->dl_tensor = dl;
  } else {
    legacy = new DLManagedTensor{};
    legacy->manager_ctx = producer;
    legacy->deleter = delete_producer<DLManagedTensor>;
    legacy->dl_tensor = dl;
  }

  deleter_calls = 0;
  {
    hfport::Tensor tensor;
    try {
      // `dl` is a copy of what the managed struct says (its shape and strides stay valid as long
      // as the tensor holds the producer); from_dlpack owns the struct from here on.
      const DLTensor described = dl;
      tensor = versioned ? hfport::from_dlpack(current) : hfport::from_dlpack(legacy);
      if (versioned && (flags & kMajorTwo)) {
        broken_promise("from_dlpack accepted a versioned struct of major version 2");
      }
      if (tensor.storage()->read_only() != (versioned && (flags & kReadOnly))) {
        broken_promise("the tensor's read-only flag differs from the producer's");
      }
      const int64_t item = static_cast<int64_t>(hfport::dtype_size(tensor.dtype()));
      if (described.dtype.lanes != 1 || described.dtype.bits != 8 * item) {
        broken_promise("from_dlpack accepted a dtype that is not one lane of its own size");
      }
      if (deleter_calls != 0) broken_promise("the deleter ran while the tensor is alive");
      for (int64_t dim : tensor.shape()) {
        if (dim < 0) broken_promise("from_dlpack accepted a negative dimension");
      }
      const Reach reach = reach_of(described, *producer, data_null, item);
      tensor.data();
      tensor.is_contiguous();
      if (reach.checkable && !reach.empty) check_elements(tensor, reach, *producer);
      if (versioned) {
        check_round_trip<DLManagedTensorVersioned>(tensor, flags & kFreeReexport);
      } else {
        check_round_trip<DLManagedTensor>(tensor, flags & kFreeReexport);
      }
    } catch (const hfport::Error&) {
    }
  }
  if (deleter_calls != 1) broken_promise("the producer's deleter did not run exactly once");
  return 0;
}
