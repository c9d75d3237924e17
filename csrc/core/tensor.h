// Tensor: a typed, strided view of a Storage. Copying a Tensor copies the view, never the bytes.
// Strides are in elements (as DLPack and torch count them); a view of a mapped checkpoint points
// into the mapping, so taking it, slicing it and exporting it read nothing from disk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/storage.h"

namespace hfport {

using Shape = std::vector<int64_t>;

std::string shape_to_string(const Shape& shape);  // "[4096, 1024]"
Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);          // the caller has validated it cannot overflow

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Storage> storage, size_t byte_offset, DType dtype, Shape shape,
         Shape strides);
  // A fresh contiguous host tensor: uninitialised (every caller writes all of it) or zeroed.
  static Tensor empty(DType dtype, const Shape& shape);
  // The same on `device`: host memory for the CPU, a CudaStorage for a CUDA device (DeviceError
  // when this build or machine has none; see device.h).
  static Tensor empty(DType dtype, const Shape& shape, const Device& device);
  static Tensor zeros(DType dtype, const Shape& shape);

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return byte_offset_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  Device device() const { return storage_ ? storage_->device() : Device{}; }
  bool defined() const { return storage_ != nullptr; }

  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  // Throws hfport::Error for a default-constructed (undefined) tensor.
  std::byte* data() const;
  template <typename T>
  T* data_as() const { return reinterpret_cast<T*>(data()); }

  // Views. `slice` keeps the dimension (Python's a[start:stop:step], bounds already clamped by the
  // caller or checked here); `select` removes it (a[index]). Both throw SliceError when out of range.
  Tensor slice(int64_t dim, int64_t start, int64_t stop, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  // dims `a` and `b` swapped (negative counts from the end): shape and strides only, no copy.
  Tensor transpose(int64_t a, int64_t b) const;
  // Same bytes, new shape; only for contiguous tensors.
  Tensor view(const Shape& shape) const;
  // Same bytes read as another dtype of the same size (BF16 as U16, say).
  Tensor view_dtype(DType dtype) const;

  // A contiguous host copy (or, for `contiguous`, this tensor itself when it already is one).
  Tensor clone() const;
  Tensor contiguous() const;

 private:
  int64_t checked_dim(int64_t dim) const;

  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
};

// Copies `src` into the contiguous host tensor `dst` of the same dtype and shape, along the
// strides: contiguous runs with memcpy, a transposed view's last two dims in cache-sized tiles.
void copy_strided(const Tensor& src, const Tensor& dst);

}  // namespace hfport
