// hfport.Tensor for Python: properties, safetensors-style indexing (views, never copies), casts,
// statistics, moves between devices, and the DLPack capsule protocol in both directions.
//
// Capsules follow the DLPack Python spec: a producer's capsule is named "dltensor" (legacy
// DLManagedTensor) or "dltensor_versioned" (DLPack 1.x, asked for with max_version >= (1, 0)), and
// its destructor frees the tensor only if no consumer took it; a consumer renames it
// "used_dltensor" / "used_dltensor_versioned" and from then on owns it. For CUDA tensors the
// `stream` argument follows the spec in both directions, with hfport's work stream (the legacy
// default stream, see core/cuda_stream.h) as our side of every handshake.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/cast.h"
#include "core/device.h"
#include "core/device_copy.h"
#include "core/dlpack_bridge.h"
#include "core/error.h"
#include "core/stats.h"
#include "core/tensor.h"
#include "python/bindings.h"

#ifdef HFPORT_WITH_CUDA
#include "ops/cuda/device_tensor.h"
#endif

namespace hfport::python {

namespace {

constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";
constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";

void destroy_unused_capsule(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, kCapsuleName)) {
    auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
    if (managed->deleter) managed->deleter(managed);
  }
}

void destroy_unused_versioned_capsule(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, kVersionedName)) {
    auto* managed =
        static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule, kVersionedName));
    if (managed->deleter) managed->deleter(managed);
  }
}

template <typename Managed>
py::capsule wrap_capsule(Managed* managed, const char* name, PyCapsule_Destructor destructor) {
  PyObject* capsule = PyCapsule_New(managed, name, destructor);
  if (capsule == nullptr) {
    managed->deleter(managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

// `copied`: `tensor` is a copy made for this export (IS_COPIED; also the reason a read-only
// tensor may leave as a legacy capsule, which cannot say it is read-only).
py::capsule export_capsule(const Tensor& tensor, bool versioned, bool copied) {
  if (versioned) {
    return wrap_capsule(to_dlpack_versioned(tensor, copied ? DLPACK_FLAG_BITMASK_IS_COPIED : 0),
                        kVersionedName, destroy_unused_versioned_capsule);
  }
  if (tensor.storage()->read_only()) {
    throw DLPackError("the tensor's memory is read-only (it was lent read-only through DLPack), "
                      "and a legacy 'dltensor' capsule cannot say so: ask with "
                      "max_version=(1, 0) for a read-only versioned capsule, or with copy=True");
  }
  return wrap_capsule(to_dlpack(tensor), kCapsuleName, destroy_unused_capsule);
}

bool is_versioned_capsule(const py::capsule& capsule) {
  return PyCapsule_IsValid(capsule.ptr(), kVersionedName) != 0;
}

// The device a fresh capsule of either kind describes.
DLDevice capsule_device(const py::capsule& capsule) {
  if (is_versioned_capsule(capsule)) {
    return static_cast<const DLManagedTensorVersioned*>(
               PyCapsule_GetPointer(capsule.ptr(), kVersionedName))->dl_tensor.device;
  }
  if (PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    return static_cast<const DLManagedTensor*>(
               PyCapsule_GetPointer(capsule.ptr(), kCapsuleName))->dl_tensor.device;
  }
  return {kDLCPU, 0};
}

Tensor import_capsule(const py::capsule& capsule) {
  if (is_versioned_capsule(capsule)) {
    auto* managed = static_cast<DLManagedTensorVersioned*>(
        PyCapsule_GetPointer(capsule.ptr(), kVersionedName));
    if (PyCapsule_SetName(capsule.ptr(), kUsedVersionedName) != 0) throw py::error_already_set();
    return from_dlpack(managed);
  }
  if (!PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    throw DLPackError("expected an unused 'dltensor' or 'dltensor_versioned' capsule (a capsule "
                      "can be consumed once)");
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
  if (PyCapsule_SetName(capsule.ptr(), kUsedCapsuleName) != 0) throw py::error_already_set();
  return from_dlpack(managed);
}

// producer.__dlpack__(max_version=(1, 1), **kwargs): a versioned capsule, which says whether the
// memory is read-only. A producer older than DLPack 1.0 takes no max_version and raises
// TypeError; it is asked again without.
py::capsule ask_producer(py::handle value, const py::kwargs& kwargs) {
  const py::object method = value.attr("__dlpack__");
  try {
    const py::tuple ours = py::make_tuple(DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION);
    return method(py::arg("max_version") = ours, **kwargs).cast<py::capsule>();
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_TypeError)) throw;
  }
  return method(**kwargs).cast<py::capsule>();
}

// A CUDA producer is asked for its data on hfport's work stream, the legacy default stream
// (DLPack's stream=1), and so does the synchronisation itself. A CPU producer gets no stream
// argument: torch and numpy refuse one there.
//
// The capsule itself says where the data is, so the producer is asked without a stream first and
// its __dlpack_device__ is never called (torch's is Python code: 1.4 us of a 1-element op's 8).
// A CUDA capsule got that way is dropped unconsumed (its deleter runs, nothing is read) and asked
// for again with the stream: only CUDA imports pay the second call.
Tensor import_producer(py::handle value) {
  auto capsule = ask_producer(value, py::kwargs());
  if (capsule_device(capsule).device_type == kDLCUDA) {
    py::kwargs with_stream;
    with_stream["stream"] = 1;
    capsule = ask_producer(value, with_stream);
  }
  return import_capsule(capsule);
}

// __dlpack__(stream, max_version, dl_device, copy) of the DLPack Python spec. max_version below
// (1, 0) (or None) gets the legacy capsule. A request for another device is served by a copy
// unless copy=False; copy=True copies on the same device. What cannot be done raises DLPackError,
// which is a BufferError in Python, as the spec asks.
py::capsule dlpack_export(const Tensor& t, const py::object& stream, const py::object& max_version,
                          const py::object& dl_device, const py::object& copy) {
  const std::optional<bool> copy_flag =
      copy.is_none() ? std::nullopt : std::optional<bool>(copy.cast<bool>());
  bool versioned = false;
  if (!max_version.is_none()) {
    const auto version = max_version.cast<std::pair<int64_t, int64_t>>();
    versioned = version.first >= 1;
  }
  Tensor out = t;
  bool copied = false;
  if (!dl_device.is_none()) {
    const auto [type, index] = dl_device.cast<std::pair<int, int>>();
    Device target;
    if (type == kDLCPU) {
      target = {DeviceType::CPU, 0};
    } else if (type == kDLCUDA) {
      target = {DeviceType::CUDA, index};
    } else {
      throw DLPackError("__dlpack__(dl_device=(" + std::to_string(type) + ", " +
                        std::to_string(index) + ")): hfport exports to the CPU (1) or CUDA (2) only");
    }
    if (!(target == t.device())) {
      if (copy_flag == false) {
        throw DLPackError("__dlpack__(dl_device=" + device_name(target) + ", copy=False): the "
                          "tensor is on " + device_name(t.device()) + ", so that needs a copy");
      }
      py::gil_scoped_release unlocked;
      out = copy_to_device(t, target);
      copied = true;
    }
  }
  if (copy_flag == true && !copied) {
    py::gil_scoped_release unlocked;
    out = copy_to_device(t, t.device());
    copied = true;
  }
  prepare_dlpack_consumer_stream(
      out, stream.is_none() ? std::nullopt : std::optional<int64_t>(stream.cast<int64_t>()));
  return export_capsule(out, versioned, copied);
}

}  // namespace

Tensor tensor_arg(py::handle value, const char* arg_name) {
  if (py::isinstance<Tensor>(value)) return value.cast<Tensor>();
  if (!py::hasattr(value, "__dlpack__")) {
    throw DLPackError(std::string("argument '") + arg_name + "' must be an hfport.Tensor or a " +
                      "DLPack producer (torch, numpy, ...), got " +
                      std::string(py::str(py::type::of(value).attr("__name__"))));
  }
  return import_producer(value);
}

Tensor optional_tensor_arg(const py::object& value, const char* arg_name) {
  return value.is_none() ? Tensor() : tensor_arg(value, arg_name);
}

namespace {

py::tuple to_tuple(const Shape& values) {
  py::tuple out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return out;
}

// tensor[key] with safetensors' rules: ints select (and drop the dim), slices with a positive
// step keep it, one Ellipsis stands for the dims not named. The result is a view. Messages count
// dims as the caller does, in `tensor`, not in the partly indexed view.
Tensor index_tensor(const Tensor& tensor, py::handle key) {
  std::vector<py::object> items;
  if (py::isinstance<py::tuple>(key)) {
    for (auto item : key.cast<py::tuple>()) items.push_back(py::reinterpret_borrow<py::object>(item));
  } else {
    items.push_back(py::reinterpret_borrow<py::object>(key));
  }
  const auto ellipses = std::count_if(items.begin(), items.end(),
                                      [](const py::object& o) { return o.is(py::ellipsis()); });
  if (ellipses > 1) throw SliceError("an index can hold only one Ellipsis (...)");
  const int64_t named = static_cast<int64_t>(items.size()) - ellipses;
  if (named > tensor.ndim()) {
    throw SliceError("too many indices (" + std::to_string(named) + ") for a tensor of shape " +
                     shape_to_string(tensor.shape()));
  }
  const std::string of_shape = " of a tensor of shape " + shape_to_string(tensor.shape());
  Tensor out = tensor;
  int64_t dim = 0;         // the dim of `out` the next item applies to
  int64_t source_dim = 0;  // the same dim counted in `tensor`
  for (const py::object& item : items) {
    if (item.is(py::ellipsis())) {
      dim += tensor.ndim() - named;
      source_dim += tensor.ndim() - named;
    } else if (py::isinstance<py::slice>(item)) {
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(item.ptr(), &start, &stop, &step) < 0) {  // step 0, or not ints
        const py::error_already_set problem;
        throw SliceError("bad slice " + std::string(py::repr(item)) + " for dimension " +
                         std::to_string(source_dim) + of_shape + ": " + problem.what());
      }
      if (step <= 0) throw SliceError("slices need a positive step, got " + std::to_string(step));
      PySlice_AdjustIndices(static_cast<Py_ssize_t>(out.shape()[dim]), &start, &stop, step);
      out = out.slice(dim, start, std::max(start, stop), step);
      ++dim;
      ++source_dim;
    } else if (PyIndex_Check(item.ptr()) && !PyBool_Check(item.ptr())) {  // int, numpy ints
      const Py_ssize_t index = PyNumber_AsSsize_t(item.ptr(), nullptr);  // clipped on overflow
      if (index == -1 && PyErr_Occurred()) throw py::error_already_set();
      const int64_t size = out.shape()[dim];
      if (index < -size || index >= size) {
        throw SliceError("index " + std::string(py::repr(item)) +
                         " is out of range for dimension " + std::to_string(source_dim) +
                         " of size " + std::to_string(size) + of_shape);
      }
      out = out.select(dim, index);
      ++source_dim;
    } else {
      throw SliceError("tensor indices must be ints, slices or ..., got " +
                       std::string(py::str(py::type::of(item).attr("__name__"))));
    }
  }
  return out;
}

py::dict stats_to_dict(const TensorStats& s) {
  py::dict d;
  d["numel"] = s.numel;
  d["finite"] = s.finite;
  d["nan"] = s.nan_count;
  d["inf"] = s.inf_count;
  d["mean"] = s.mean;
  d["std"] = s.std;
  d["min"] = s.min;
  d["max"] = s.max;
  return d;
}

}  // namespace

DType dtype_from_user_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.rfind("torch.", 0) == 0) lower = lower.substr(6);
  // torch's and numpy's names (ml_dtypes' for the float8 types); safetensors' own names, in any
  // case, are matched below.
  static const std::pair<const char*, DType> kAliases[] = {
      {"float32", DType::F32},   {"float", DType::F32},     {"fp32", DType::F32},
      {"float16", DType::F16},   {"half", DType::F16},      {"fp16", DType::F16},
      {"bfloat16", DType::BF16}, {"float64", DType::F64},   {"double", DType::F64},
      {"fp64", DType::F64},      {"bool", DType::BOOL},     {"uint8", DType::U8},
      {"int8", DType::I8},       {"int16", DType::I16},     {"short", DType::I16},
      {"uint16", DType::U16},    {"int32", DType::I32},     {"int", DType::I32},
      {"uint32", DType::U32},    {"int64", DType::I64},     {"long", DType::I64},
      {"uint64", DType::U64},    {"float8_e4m3fn", DType::F8_E4M3},
      {"float8_e5m2", DType::F8_E5M2},
  };
  for (const auto& [alias, dtype] : kAliases) {
    if (lower == alias) return dtype;
  }
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (auto dtype = dtype_from_name(upper)) return *dtype;
  throw DTypeError("unknown dtype '" + name + "'; use a safetensors name (F32, BF16, I64, ...), "
                   "a torch or numpy name (float32, bfloat16, int64, ...), bf16 / f16 / f32, or "
                   "a torch, numpy or ml_dtypes dtype");
}

DType dtype_arg(py::handle value) {
  if (py::isinstance<py::str>(value)) return dtype_from_user_name(value.cast<std::string>());
  // torch.bfloat16, np.float16, np.dtype("f4"), ml_dtypes.bfloat16: named by the one Python
  // function that knows those libraries (hfport.dtypes.dtype_name).
  const py::object name = py::module_::import("hfport.dtypes").attr("dtype_name")(value);
  return dtype_from_user_name(name.cast<std::string>());
}

std::optional<DType> optional_dtype_arg(py::handle value) {
  if (value.is_none()) return std::nullopt;
  return dtype_arg(value);
}

namespace {

// A Tensor.to argument that names a device: 'cpu', 'cuda', 'cuda:1', or a torch.device.
bool is_device_arg(py::handle value) {
  if (py::isinstance<py::str>(value)) {
    const auto text = value.cast<std::string>();
    return text.rfind("cpu", 0) == 0 || text.rfind("cuda", 0) == 0;
  }
  const py::handle type = py::type::of(value);
  return py::str(type.attr("__name__")).cast<std::string>() == "device" &&
         py::str(type.attr("__module__")).cast<std::string>() == "torch";
}

// A cast where the tensor lives: core's multithreaded host cast, or the device conversion for a
// CUDA tensor. The tensor itself when it already has that dtype.
Tensor cast_where_it_lives(const Tensor& t, DType target) {
  if (t.dtype() == target) return t;
#ifdef HFPORT_WITH_CUDA
  if (t.device().type == DeviceType::CUDA) {
    return cuda::contiguous_as("Tensor.to", "self", t, target);
  }
#endif
  return cast(t, target);
}

// Tensor.to(*args, dtype=None, device=None) as torch takes it: positional arguments are a device
// or a dtype, in either order.
Tensor tensor_to(const Tensor& t, const py::args& args, const py::object& dtype,
                 const py::object& device) {
  if (args.size() > 2) {
    throw ArgumentError("Tensor.to takes a device and / or a dtype, got " +
                        std::to_string(args.size()) + " positional arguments");
  }
  py::object want_device = device, want_dtype = dtype;
  for (const auto& arg : args) {
    py::object& slot = is_device_arg(arg) ? want_device : want_dtype;
    if (!slot.is_none()) {
      throw ArgumentError("Tensor.to got two " +
                          std::string(&slot == &want_device ? "devices" : "dtypes") + ": " +
                          std::string(py::repr(slot)) + " and " + std::string(py::repr(arg)));
    }
    slot = py::reinterpret_borrow<py::object>(arg);
  }
  const std::optional<Device> target_device =
      want_device.is_none() ? std::nullopt
                            : std::optional<Device>(parse_device(py::str(want_device)));
  const std::optional<DType> target_dtype = optional_dtype_arg(want_dtype);
  py::gil_scoped_release unlocked;
  Tensor out = target_device ? to_device(t, *target_device) : t;
  return target_dtype ? cast_where_it_lives(out, *target_dtype) : out;
}

}  // namespace

void bind_tensor(py::module_& m) {
  py::class_<Tensor>(m, "Tensor",
                     "A typed, strided view of memory on the host (a mapped checkpoint, an "
                     "hfport allocation, an imported DLPack tensor) or on a CUDA device. Exports "
                     "through DLPack without copying: torch.from_dlpack(t), numpy.from_dlpack(t); "
                     "t.to_device('cuda') / t.to_device('cpu') move it.")
      .def_property_readonly("shape", [](const Tensor& t) { return to_tuple(t.shape()); })
      .def_property_readonly("strides", [](const Tensor& t) { return to_tuple(t.strides()); },
                             "strides in elements")
      .def_property_readonly("dtype", [](const Tensor& t) { return std::string(dtype_name(t.dtype())); },
                             "the safetensors dtype name, e.g. 'BF16'")
      .def_property_readonly("device", [](const Tensor& t) { return device_name(t.device()); },
                             "'cpu' or 'cuda:N'")
      .def_property_readonly("ndim", &Tensor::ndim)
      .def("numel", &Tensor::numel, "the number of elements")
      .def("size", [](const Tensor& t, const std::optional<int64_t>& dim) -> py::object {
             if (!dim) return to_tuple(t.shape());
             const int64_t d = *dim < 0 ? *dim + t.ndim() : *dim;
             if (d < 0 || d >= t.ndim()) {
               throw SliceError("size(" + std::to_string(*dim) + "): dimension out of range for "
                                "a tensor of shape " + shape_to_string(t.shape()));
             }
             return py::int_(t.shape()[d]);
           }, py::arg("dim") = py::none(), "the shape as a tuple, or the size of one dimension")
      .def_property_readonly("nbytes", &Tensor::nbytes)
      .def_property_readonly("itemsize", [](const Tensor& t) { return dtype_size(t.dtype()); })
      .def_property_readonly("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data()); })
      .def_property_readonly("read_only", [](const Tensor& t) {
             return t.defined() && t.storage()->read_only();
           }, "the memory was lent read-only through DLPack (a numpy array with writeable=False); "
              "exports of it are read-only too. Mapped checkpoints are writable copy-on-write")
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("contiguous", &Tensor::contiguous, "a contiguous copy, or this tensor if it already is one")
      .def("clone", &Tensor::clone, "a contiguous copy in new host memory")
      .def("to", &tensor_to, py::kw_only(), py::arg("dtype") = py::none(),
           py::arg("device") = py::none(),
           "t.to(torch.float16), t.to('bf16'), t.to('cuda'), t.to('cpu', torch.float32), "
           "t.to(dtype=..., device=...): a move to the device (a contiguous copy; see to_device), "
           "then a cast to F32 / F64 / F16 / BF16 (multithreaded). Returns this tensor when "
           "nothing changes. A dtype is a string ('bf16', 'float32', 'F16'), a torch, numpy or "
           "ml_dtypes dtype")
      .def("to_device", [](const Tensor& t, const std::string& device) {
             const Device target = parse_device(device);
             py::gil_scoped_release unlocked;
             return to_device(t, target);
           }, py::arg("device"),
           "'cpu', 'cuda' or 'cuda:N': a contiguous copy there, or this tensor if already there. "
           "Runs on hfport's stream (the legacy default stream); a copy to the CPU has finished "
           "when it returns")
      .def("view_dtype", [](const Tensor& t, const py::object& dtype) {
             return t.view_dtype(dtype_arg(dtype));
           }, py::arg("dtype"), "the same bytes read as another dtype of the same size")
      .def("transpose", &Tensor::transpose, py::arg("dim0"), py::arg("dim1"),
           "a view with two dimensions swapped")
      .def_property_readonly("mT", [](const Tensor& t) {
             if (t.ndim() < 2) {
               throw ArgumentError("tensor.mT needs at least 2 dimensions, got shape " +
                                   shape_to_string(t.shape()));
             }
             return t.transpose(-2, -1);
           }, "a view with the last two dimensions swapped")
      .def_property_readonly("T", [](const Tensor& t) {
             if (t.ndim() > 2) {
               throw ArgumentError("tensor.T is the transpose of a 0-, 1- or 2-D tensor; this one "
                                   "has shape " + shape_to_string(t.shape()) + ": use .mT (the "
                                   "last two dims) or .transpose(d0, d1)");
             }
             return t.ndim() == 2 ? t.transpose(0, 1) : t;
           }, "the transpose of a 2-D tensor (a view); 0- and 1-D tensors are returned as they are")
      .def("__getitem__", &index_tensor, py::arg("index"),
           "a view: ints select, slices (step > 0) narrow, ... fills")
      .def("get_shape", [](const Tensor& t) { return py::list(to_tuple(t.shape())); },
           "safetensors' slice API: the shape as a list")
      .def("get_dtype", [](const Tensor& t) { return std::string(dtype_name(t.dtype())); },
           "safetensors' slice API: the dtype name")
      .def("__len__", [](const Tensor& t) {
        if (t.ndim() == 0) throw py::type_error("len() of a 0-d tensor");
        return t.shape()[0];
      })
      .def("__dlpack__", &dlpack_export, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none(),
           "a DLPack capsule: versioned ('dltensor_versioned', DLPack 1.1, read-only where the "
           "memory is) when max_version >= (1, 0), else legacy ('dltensor')")
      .def("__dlpack_device__", [](const Tensor& t) {
        const Device d = t.device();
        return py::make_tuple(d.type == DeviceType::CPU ? static_cast<int>(kDLCPU)
                                                        : static_cast<int>(kDLCUDA),
                              d.index);
      });

  m.def("_tensor_from_capsule", &import_capsule, py::arg("capsule"),
        "consume a 'dltensor' or 'dltensor_versioned' capsule; the tensor shares its memory");
  m.def("_dtype_from_name", [](const std::string& name) {
          return std::string(dtype_name(dtype_from_user_name(name)));
        }, py::arg("name"), "the safetensors name of a dtype given by any name hfport accepts");
  m.def("_tensor_from_producer", &import_producer, py::arg("producer"),
        "view a DLPack producer's memory; a CUDA producer syncs to hfport's stream first");
  m.def("tensor_stats",
        [](const std::vector<Tensor>& tensors, std::function<void(size_t)> progress) {
          std::vector<TensorStats> stats;
          {
            py::gil_scoped_release unlocked;
            std::function<void(size_t)> report;
            if (progress) {
              report = [&progress](size_t done) {
                py::gil_scoped_acquire locked;
                progress(done);
              };
            }
            stats = tensor_stats_many(tensors, report);
          }
          py::list out;
          for (const auto& s : stats) out.append(stats_to_dict(s));
          return out;
        },
        py::arg("tensors"), py::arg("progress") = py::none(),
        "mean / std / min / max over finite values and NaN / Inf counts, per tensor, on all "
        "threads; progress(done) is called as tensors finish");
}

}  // namespace hfport::python
