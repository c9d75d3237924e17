#include "core/dlpack_bridge.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "core/cuda_stream.h"
#include "core/error.h"

namespace hfport {

namespace {

DLDataType to_dl_dtype(DType dtype) {
  const uint8_t bits = static_cast<uint8_t>(dtype_size(dtype) * 8);
  switch (dtype) {
    case DType::BOOL: return {kDLBool, 8, 1};
    case DType::U8: case DType::U16: case DType::U32: case DType::U64:
      return {kDLUInt, bits, 1};
    case DType::I8: case DType::I16: case DType::I32: case DType::I64:
      return {kDLInt, bits, 1};
    case DType::F16: case DType::F32: case DType::F64: return {kDLFloat, bits, 1};
    case DType::BF16: return {kDLBfloat, 16, 1};
    case DType::F8_E4M3: return {kDLFloat8_e4m3fn, 8, 1};
    case DType::F8_E5M2: return {kDLFloat8_e5m2, 8, 1};
  }
  throw DLPackError("unhandled dtype");
}

std::optional<DType> from_dl_dtype(DLDataType t) {
  if (t.lanes != 1) return std::nullopt;
  switch (t.code) {
    case kDLInt:
      switch (t.bits) {
        case 8: return DType::I8;
        case 16: return DType::I16;
        case 32: return DType::I32;
        case 64: return DType::I64;
      }
      break;
    case kDLUInt:
      switch (t.bits) {
        case 8: return DType::U8;
        case 16: return DType::U16;
        case 32: return DType::U32;
        case 64: return DType::U64;
      }
      break;
    case kDLFloat:
      switch (t.bits) {
        case 16: return DType::F16;
        case 32: return DType::F32;
        case 64: return DType::F64;
      }
      break;
    case kDLBfloat:
      if (t.bits == 16) return DType::BF16;
      break;
    case kDLBool:
      if (t.bits == 8) return DType::BOOL;
      break;
    case kDLFloat8_e4m3fn:
      if (t.bits == 8) return DType::F8_E4M3;
      break;
    case kDLFloat8_e5m2:
      if (t.bits == 8) return DType::F8_E5M2;
      break;
  }
  return std::nullopt;
}

// What an exported DLManagedTensor(Versioned) owns: the view (and so the storage) and the shape
// arrays.
struct ExportContext {
  Tensor tensor;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

// The DLTensor describing `tensor` and the context that keeps what it points at alive.
std::unique_ptr<ExportContext> describe(const Tensor& tensor, DLTensor& dl) {
  Shape strides = tensor.strides();
  for (int64_t& stride : strides) {
    // An empty tensor's strides address nothing: a negative one is exported as 0.
    if (stride < 0 && tensor.numel() == 0) stride = 0;
    // DLPack allows them, but consumers do not all agree (torch 2.13 aborts on one).
    if (stride < 0) {
      throw DLPackError("tensor of shape " + shape_to_string(tensor.shape()) + " has negative "
                        "strides " + shape_to_string(tensor.strides()) +
                        "; export .contiguous() instead");
    }
  }
  auto context = std::make_unique<ExportContext>(
      ExportContext{tensor, tensor.shape(), std::move(strides)});
  dl.data = tensor.data();
  const Device device = tensor.device();
  dl.device = device.type == DeviceType::CPU ? DLDevice{kDLCPU, 0} : DLDevice{kDLCUDA, device.index};
  dl.ndim = static_cast<int32_t>(tensor.ndim());
  dl.dtype = to_dl_dtype(tensor.dtype());
  dl.shape = context->shape.data();
  dl.strides = context->strides.data();
  dl.byte_offset = 0;
  return context;
}

template <typename Managed>
void delete_export(Managed* managed) {
  delete static_cast<ExportContext*>(managed->manager_ctx);
  delete managed;
}

// The tensor viewing a producer's DLTensor; `owner` calls the producer's deleter when dropped
// (it is dropped on every throw here, and held by the storage otherwise).
Tensor import_view(const DLTensor& dl, std::shared_ptr<void> owner, bool read_only);

}  // namespace

DLManagedTensor* to_dlpack(const Tensor& tensor) {
  auto managed = std::make_unique<DLManagedTensor>();
  auto context = describe(tensor, managed->dl_tensor);
  managed->manager_ctx = context.release();
  managed->deleter = delete_export<DLManagedTensor>;
  return managed.release();
}

DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& tensor, uint64_t extra_flags) {
  auto managed = std::make_unique<DLManagedTensorVersioned>();
  auto context = describe(tensor, managed->dl_tensor);
  managed->version = {DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  managed->flags = extra_flags;
  if (tensor.storage()->read_only()) managed->flags |= DLPACK_FLAG_BITMASK_READ_ONLY;
  managed->manager_ctx = context.release();
  managed->deleter = delete_export<DLManagedTensorVersioned>;
  return managed.release();
}

void prepare_dlpack_consumer_stream(const Tensor& tensor, std::optional<int64_t> stream) {
  if (tensor.device().type != DeviceType::CUDA) return;
  constexpr int64_t kNoSync = -1, kLegacyDefault = 1;
  const int64_t code = stream.value_or(kLegacyDefault);
  if (code == kNoSync) return;
  if (code <= 0) {
    throw DLPackError("__dlpack__(stream=" + std::to_string(code) + ") for a CUDA tensor: the "
                      "DLPack spec disallows it; pass None or 1 (legacy default stream), 2 "
                      "(per-thread default stream), -1 (no synchronisation) or a cudaStream_t");
  }
  // 1 (legacy default) and 2 (per-thread default) are also the values of the handles
  // cudaStreamLegacy and cudaStreamPerThread, so every accepted code is its own cudaStream_t.
  cuda_stream_wait_for_work(tensor.device(), reinterpret_cast<void*>(static_cast<uintptr_t>(code)));
}

Tensor from_dlpack(DLManagedTensor* managed) {
  // Whatever happens below, the producer's deleter runs exactly once.
  std::shared_ptr<DLManagedTensor> owner(managed, [](DLManagedTensor* m) {
    if (m->deleter) m->deleter(m);
  });
  return import_view(managed->dl_tensor, std::move(owner), false);
}

Tensor from_dlpack(DLManagedTensorVersioned* managed) {
  std::shared_ptr<DLManagedTensorVersioned> owner(managed, [](DLManagedTensorVersioned* m) {
    if (m->deleter) m->deleter(m);
  });
  if (managed->version.major != DLPACK_MAJOR_VERSION) {
    throw DLPackError("DLPack tensor has version " + std::to_string(managed->version.major) + "." +
                      std::to_string(managed->version.minor) + "; hfport reads major version " +
                      std::to_string(DLPACK_MAJOR_VERSION));
  }
  const bool read_only = (managed->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0;
  return import_view(managed->dl_tensor, std::move(owner), read_only);
}

namespace {

Tensor import_view(const DLTensor& dl, std::shared_ptr<void> owner, bool read_only) {
  const auto dtype = from_dl_dtype(dl.dtype);
  if (!dtype) {
    throw DLPackError("DLPack tensor has dtype code " + std::to_string(dl.dtype.code) + ", " +
                      std::to_string(dl.dtype.bits) + " bits, " + std::to_string(dl.dtype.lanes) +
                      " lanes, which hfport does not handle (expected one lane of a safetensors "
                      "dtype)");
  }
  Device device;
  switch (dl.device.device_type) {
    case kDLCPU: case kDLCUDAHost: device = {DeviceType::CPU, 0}; break;
    case kDLCUDA: device = {DeviceType::CUDA, dl.device.device_id}; break;
    default:
      throw DLPackError("DLPack tensor is on device type " + std::to_string(dl.device.device_type) +
                        "; hfport handles CPU and CUDA");
  }
  if (dl.ndim < 0) throw DLPackError("DLPack tensor has negative ndim " + std::to_string(dl.ndim));
  if (dl.ndim > 0 && dl.shape == nullptr) {
    throw DLPackError("DLPack tensor of ndim " + std::to_string(dl.ndim) + " has no shape array");
  }
  Shape shape(dl.shape, dl.shape + dl.ndim);
  bool empty = false;
  for (int i = 0; i < dl.ndim; ++i) {
    if (shape[i] < 0) {
      throw DLPackError("DLPack tensor has a negative dimension: shape " + shape_to_string(shape));
    }
    empty = empty || shape[i] == 0;
  }
  // The compact row-major strides (what DLPack < 1.2 means by null strides) must fit int64 even
  // when the producer gives strides of its own: torch refuses a shape whose do not ("Stride
  // calculation overflowed"), the safetensors reader does too, and a copy of the tensor
  // (clone, contiguous) is laid out with them.
  Shape strides(shape.size(), 1);
  for (int i = dl.ndim - 2; i >= 0; --i) {
    if (__builtin_mul_overflow(strides[i + 1], std::max<int64_t>(shape[i + 1], 1), &strides[i])) {
      throw DLPackError("DLPack tensor of shape " + shape_to_string(shape) +
                        " has strides that do not fit in 64 bits");
    }
  }
  if (dl.strides) strides.assign(dl.strides, dl.strides + dl.ndim);
  const int64_t item = static_cast<int64_t>(dtype_size(*dtype));
  if (empty) {
    // Nothing will be read: keep the producer's pointer (often null) without offsetting it.
    auto storage = std::make_shared<ExternalStorage>(static_cast<std::byte*>(dl.data), 0, device,
                                                     [owner]() mutable { owner.reset(); },
                                                     read_only);
    return Tensor(std::move(storage), 0, *dtype, std::move(shape), std::move(strides));
  }
  int64_t numel = 1;
  for (const int64_t dim : shape) {
    if (__builtin_mul_overflow(numel, dim, &numel)) {
      throw DLPackError("DLPack tensor of shape " + shape_to_string(shape) + " has more elements "
                        "than fit in 64 bits");
    }
  }
  if (dl.data == nullptr) {
    throw DLPackError("DLPack tensor of shape " + shape_to_string(shape) + " has a null data "
                      "pointer");
  }

  // The storage spans every element the strides can reach (strides may be negative); a producer
  // whose shape and strides reach beyond 64 bits of address space is refused, not wrapped.
  const auto overflow = [&] {
    return DLPackError("DLPack tensor of shape " + shape_to_string(shape) + " and strides " +
                       shape_to_string(strides) + " spans more bytes than fit in 64 bits");
  };
  int64_t lowest = 0, highest = 0;
  for (int i = 0; i < dl.ndim; ++i) {
    int64_t reach = 0;
    if (__builtin_mul_overflow(shape[i] - 1, strides[i], &reach) ||
        __builtin_add_overflow(reach < 0 ? lowest : highest, reach, reach < 0 ? &lowest : &highest)) {
      throw overflow();
    }
  }
  int64_t span_elements = 0, span = 0, lowest_bytes = 0;
  if (__builtin_sub_overflow(highest, lowest, &span_elements) ||
      __builtin_add_overflow(span_elements, int64_t{1}, &span_elements) ||
      __builtin_mul_overflow(span_elements, item, &span) ||
      __builtin_mul_overflow(lowest, item, &lowest_bytes)) {
    throw overflow();
  }
  uintptr_t first = 0, base = 0;
  if (__builtin_add_overflow(reinterpret_cast<uintptr_t>(dl.data), dl.byte_offset, &first) ||
      __builtin_sub_overflow(first, static_cast<uintptr_t>(-lowest_bytes), &base)) {
    throw DLPackError("DLPack tensor's data pointer plus byte_offset " +
                      std::to_string(dl.byte_offset) + " and its lowest stride reach wrap the "
                      "address space");
  }
  // Releasing the storage drops `owner`, which calls the producer's deleter.
  auto storage = std::make_shared<ExternalStorage>(reinterpret_cast<std::byte*>(base),
                                                   static_cast<size_t>(span), device,
                                                   [owner]() mutable { owner.reset(); },
                                                   read_only);
  return Tensor(std::move(storage), static_cast<size_t>(-lowest_bytes), *dtype, std::move(shape),
                std::move(strides));
}

}  // namespace

}  // namespace hfport
