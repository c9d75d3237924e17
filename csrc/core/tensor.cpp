#include "core/tensor.h"

#include <cstring>
#include <sstream>
#include <utility>

#include "core/cuda_storage.h"
#include "core/error.h"

namespace hfport {

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * (shape[i + 1] == 0 ? 1 : shape[i + 1]);
  }
  return strides;
}

int64_t shape_numel(const Shape& shape) {
  // The header check allows a zero dim beside dims whose product alone overflows int64
  // ([2^62, 2^62, 0] holds no element); multiplying those first would be signed overflow.
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, size_t byte_offset, DType dtype, Shape shape,
               Shape strides)
    : storage_(std::move(storage)),
      byte_offset_(byte_offset),
      dtype_(dtype),
      shape_(std::move(shape)),
      strides_(std::move(strides)) {}

namespace {

Tensor new_host_tensor(DType dtype, const Shape& shape, bool zero_fill) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto storage = std::make_shared<HostStorage>(bytes, zero_fill);
  return Tensor(std::move(storage), 0, dtype, shape, contiguous_strides(shape));
}

}  // namespace

Tensor Tensor::empty(DType dtype, const Shape& shape) { return new_host_tensor(dtype, shape, false); }

Tensor Tensor::empty(DType dtype, const Shape& shape, const Device& device) {
  if (device.type == DeviceType::CPU) return new_host_tensor(dtype, shape, false);
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(std::make_shared<CudaStorage>(bytes, device.index), 0, dtype, shape,
                contiguous_strides(shape));
}

Tensor Tensor::zeros(DType dtype, const Shape& shape) { return new_host_tensor(dtype, shape, true); }

std::byte* Tensor::data() const {
  if (!storage_) throw Error("an undefined (default-constructed) tensor has no data");
  std::byte* base = storage_->data();
  // A zero-element tensor may have no memory at all (DLPack producers pass null for one).
  return base == nullptr ? nullptr : base + byte_offset_;
}

bool Tensor::is_contiguous() const {
  // Holding nothing, any strides will do; and the products below fit int64 only when the
  // element count does (an empty tensor's other dims may be huge: [0, 2^40, 2^40]).
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int64_t i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;  // a size-1 dim's stride never matters
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

int64_t Tensor::checked_dim(int64_t dim) const {
  const int64_t d = dim < 0 ? dim + ndim() : dim;
  if (d < 0 || d >= ndim()) {
    throw SliceError("dimension " + std::to_string(dim) + " is out of range for a tensor of shape " +
                     shape_to_string(shape_));
  }
  return d;
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t stop, int64_t step) const {
  const int64_t d = checked_dim(dim);
  if (step <= 0) throw SliceError("slice step must be positive, got " + std::to_string(step));
  if (start < 0 || stop < start || stop > shape_[d]) {
    throw SliceError("slice [" + std::to_string(start) + ":" + std::to_string(stop) +
                     "] is outside dimension " + std::to_string(d) + " of size " +
                     std::to_string(shape_[d]));
  }
  Tensor out = *this;
  out.shape_[d] = (stop - start + step - 1) / step;
  // A view with no element reads nothing; its offset stays put (the product may not even fit:
  // [0, 2^31, 2^31] has valid element strides but byte strides beyond 64 bits).
  if (out.numel() > 0) {
    out.byte_offset_ += static_cast<size_t>(start * strides_[d]) * dtype_size(dtype_);
  }
  out.strides_[d] = strides_[d] * step;
  return out;
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  const int64_t d = checked_dim(dim);
  const int64_t i = index < 0 ? index + shape_[d] : index;
  if (i < 0 || i >= shape_[d]) {
    throw SliceError("index " + std::to_string(index) + " is out of range for dimension " +
                     std::to_string(d) + " of size " + std::to_string(shape_[d]));
  }
  Tensor out = *this;
  out.shape_.erase(out.shape_.begin() + d);
  out.strides_.erase(out.strides_.begin() + d);
  if (out.numel() > 0) {  // as in slice
    out.byte_offset_ += static_cast<size_t>(i * strides_[d]) * dtype_size(dtype_);
  }
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  const int64_t da = checked_dim(a), db = checked_dim(b);
  Tensor out = *this;
  std::swap(out.shape_[da], out.shape_[db]);
  std::swap(out.strides_[da], out.strides_[db]);
  return out;
}

Tensor Tensor::view(const Shape& shape) const {
  if (!is_contiguous()) throw SliceError("view needs a contiguous tensor");
  if (shape_numel(shape) != numel()) {
    throw SliceError("cannot view a tensor of shape " + shape_to_string(shape_) + " as " +
                     shape_to_string(shape));
  }
  return Tensor(storage_, byte_offset_, dtype_, shape, contiguous_strides(shape));
}

Tensor Tensor::view_dtype(DType dtype) const {
  if (dtype_size(dtype) != dtype_size(dtype_)) {
    throw DTypeConversionError("cannot view " + std::string(dtype_name(dtype_)) + " as " +
                               std::string(dtype_name(dtype)) + ": element sizes differ");
  }
  Tensor out = *this;
  out.dtype_ = dtype;
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(dtype_, shape_);
  copy_strided(*this, out);
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

void copy_strided(const Tensor& src, const Tensor& dst) {
  if (src.device().type != DeviceType::CPU || dst.device().type != DeviceType::CPU) {
    throw DeviceError("copy_strided copies host memory; a tensor is on CUDA");
  }
  if (src.shape() != dst.shape() || src.dtype() != dst.dtype() || !dst.is_contiguous()) {
    throw SliceError("copy_strided: destination must be contiguous with the source's dtype and shape");
  }
  const int64_t n = src.numel();
  if (n == 0) return;
  const size_t item = dtype_size(src.dtype());
  const int64_t nd = src.ndim();
  // The innermost dims that are contiguous in src form one run copied with memcpy.
  int64_t run = 1;
  int64_t outer_dims = nd;
  while (outer_dims > 0 && src.strides()[outer_dims - 1] == run) {
    run *= src.shape()[outer_dims - 1];
    --outer_dims;
  }
  const std::byte* base = src.data();
  std::byte* out = dst.data();
  std::vector<int64_t> index(outer_dims, 0);
  for (int64_t done = 0; done < n; done += run) {
    int64_t offset = 0;
    for (int64_t i = 0; i < outer_dims; ++i) offset += index[i] * src.strides()[i];
    std::memcpy(out, base + offset * static_cast<int64_t>(item), static_cast<size_t>(run) * item);
    out += run * static_cast<int64_t>(item);
    for (int64_t i = outer_dims - 1; i >= 0; --i) {
      if (++index[i] < src.shape()[i]) break;
      index[i] = 0;
    }
  }
}

}  // namespace hfport
