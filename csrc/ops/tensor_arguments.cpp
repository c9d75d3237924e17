#include "ops/tensor_arguments.h"

#include "core/cast.h"
#include "core/device.h"
#include "core/parallel.h"
#include "kernels/cpu/float_element.h"

namespace hfport {

namespace {

std::string prefix(const char* op, const char* arg) { return std::string(op) + ": " + arg; }

}  // namespace

Device op_device(const char* op, std::initializer_list<NamedTensor> args) {
  const char* first_name = nullptr;
  Device device;
  for (const auto& [name, tensor] : args) {
    if (tensor == nullptr || !tensor->defined()) continue;
    if (first_name == nullptr) {
      first_name = name;
      device = tensor->device();
    } else if (tensor->device() != device) {
      throw DeviceError(std::string(op) + ": all tensors must be on one device; " + first_name +
                        " is on " + device_name(device) + ", " + name + " on " +
                        device_name(tensor->device()));
    }
  }
  return device;
}

void require_defined(const char* op, const char* arg, const Tensor& t) {
  if (!t.defined()) throw ArgumentError(prefix(op, arg) + " is required, got an undefined tensor");
}

void require_host(const char* op, const char* arg, const Tensor& t) {
  require_defined(op, arg, t);
  if (t.device().type != DeviceType::CPU) {
    throw DeviceError(prefix(op, arg) + " must be a host (CPU) tensor, got a CUDA tensor");
  }
}

void require_host_device(const char* op, const Device& device) {
  if (device.type == DeviceType::CPU) return;
#ifdef HFPORT_WITH_CUDA
  const char* where = "runs on the CPU only";
#else
  const char* where = "runs on the CPU only in this build of hfport (built without CUDA)";
#endif
  throw DeviceError(std::string(op) + ": " + where + "; its tensors are on " + device_name(device));
}

void require_float(const char* op, const char* arg, const Tensor& t) {
  require_host(op, arg, t);
  require_float_type(op, arg, t);
}

void require_float_type(const char* op, const char* arg, const Tensor& t) {
  require_defined(op, arg, t);
  const DType d = t.dtype();
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16) {
    throw ArgumentError(prefix(op, arg) + " must have dtype F32, F16 or BF16, got " +
                std::string(dtype_name(d)));
  }
}

void require_shape(const char* op, const char* arg, const Tensor& t, const Shape& expected,
                   const std::string& expected_names) {
  if (t.shape() != expected) {
    throw ArgumentError(prefix(op, arg) + " must be " + expected_names + " = " +
                shape_to_string(expected) + ", got " + shape_to_string(t.shape()));
  }
}

std::vector<int64_t> read_index_values(const char* op, const char* arg, const Tensor& t,
                                       const Shape& expected, const std::string& expected_names) {
  require_host(op, arg, t);
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32) {
    throw ArgumentError(prefix(op, arg) + " must have dtype I64 or I32, got " +
                        std::string(dtype_name(t.dtype())));
  }
  require_shape(op, arg, t, expected, expected_names);
  const Tensor c = t.contiguous();
  std::vector<int64_t> values(static_cast<size_t>(c.numel()));
  for (int64_t i = 0; i < c.numel(); ++i) {
    values[static_cast<size_t>(i)] =
        c.dtype() == DType::I64 ? c.data_as<int64_t>()[i] : c.data_as<int32_t>()[i];
  }
  return values;
}

void require_ndim(const char* op, const char* arg, const Tensor& t, int64_t ndim,
                  const std::string& expected_names) {
  if (t.ndim() != ndim) {
    throw ArgumentError(prefix(op, arg) + " must be " + expected_names + " (" + std::to_string(ndim) +
                " dimensions), got " + shape_to_string(t.shape()));
  }
}

void require_same_dtype(const char* op, const char* arg, const Tensor& t, const char* other_arg,
                        const Tensor& other) {
  if (t.dtype() != other.dtype()) {
    throw ArgumentError(prefix(op, arg) + " must have the dtype of " + other_arg + " (" +
                std::string(dtype_name(other.dtype())) + "), got " +
                std::string(dtype_name(t.dtype())));
  }
}

Tensor as_f32_contiguous(const Tensor& t) { return cast(t, DType::F32).contiguous(); }

namespace {

// [first, last) bytes a strided view can touch.
std::pair<const std::byte*, const std::byte*> byte_range(const Tensor& t) {
  const std::byte* first = t.data();
  if (t.numel() == 0) return {first, first};
  int64_t last = 0;
  for (int64_t d = 0; d < t.ndim(); ++d) last += (t.shape()[d] - 1) * t.strides()[d];
  return {first, first + (last + 1) * static_cast<int64_t>(dtype_size(t.dtype()))};
}

}  // namespace

void require_no_overlap(const char* op, const Tensor& out, const Tensor& input,
                        const char* input_name) {
  // By address, not by Storage: two DLPack imports of one torch tensor are two Storages.
  if (!out.defined() || !input.defined() || out.device() != input.device()) return;
  const auto [a0, a1] = byte_range(out);
  const auto [b0, b1] = byte_range(input);
  if (a0 < b1 && b0 < a1) {
    throw ArgumentError(prefix(op, "out") + " shares memory with " + input_name +
                        "; pass a separate output tensor");
  }
}

Tensor pack_bgln_f32(const Tensor& t, const std::array<int64_t, 4>& sizes,
                     const std::array<int64_t, 4>& strides) {
  // Plain names, not structured bindings: clang before 16 cannot capture those in the lambdas.
  const int64_t batch = sizes[0], groups = sizes[1], seqlen = sizes[2], n = sizes[3];
  const int64_t s_b = strides[0], s_g = strides[1], s_l = strides[2], s_n = strides[3];
  Tensor packed = Tensor::empty(DType::F32, {batch, groups, seqlen, n});
  float* dst = packed.data_as<float>();
  dispatch_float(t.dtype(), [&](auto tag) {
    using E = decltype(tag);
    const auto* src = t.data_as<typename E::Stored>();
    parallel_for(batch * groups, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bg = begin; bg < end; ++bg) {
        const auto* in = src + (bg / groups) * s_b + (bg % groups) * s_g;
        float* out = dst + bg * seqlen * n;
        for (int64_t l = 0; l < seqlen; ++l) {
          for (int64_t i = 0; i < n; ++i) out[l * n + i] = E::load(in[l * s_l + i * s_n]);
        }
      }
    });
  });
  return packed;
}

Tensor output_tensor(const char* op, const Tensor& out, DType dtype, const Shape& shape) {
  if (!out.defined()) return Tensor::empty(dtype, shape);
  require_host(op, "out", out);
  require_shape(op, "out", out, shape, "the result's shape");
  if (out.dtype() != dtype) {
    throw ArgumentError(prefix(op, "out") + " must have dtype " + std::string(dtype_name(dtype)) +
                ", got " + std::string(dtype_name(out.dtype())));
  }
  if (!out.is_contiguous()) throw ArgumentError(prefix(op, "out") + " must be contiguous");
  if (out.storage()->read_only()) {
    throw ArgumentError(prefix(op, "out") + " is read-only memory (lent read-only through "
                        "DLPack, e.g. a numpy array with writeable=False)");
  }
  return out;
}

}  // namespace hfport
