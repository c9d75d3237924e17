// hfport.Tensor for Python: properties, safetensors-style indexing (views, never copies), casts,
// statistics, moves between devices, and the DLPack capsule protocol in both directions.
//
// Capsules follow the DLPack Python spec for the legacy struct: a producer's capsule is named
// "dltensor" and its destructor frees the tensor only if no consumer took it; a consumer renames
// it "used_dltensor" and from then on owns it. For CUDA tensors the `stream` argument follows the
// spec in both directions, with hfport's work stream (the legacy default stream, see
// core/cuda_stream.h) as our side of every handshake.
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

namespace hfport::python {

namespace {

constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";

void destroy_unused_capsule(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, kCapsuleName)) {
    auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
    if (managed->deleter) managed->deleter(managed);
  }
}

py::capsule export_capsule(const Tensor& tensor) {
  DLManagedTensor* managed = to_dlpack(tensor);
  PyObject* capsule = PyCapsule_New(managed, kCapsuleName, destroy_unused_capsule);
  if (capsule == nullptr) {
    managed->deleter(managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

Tensor import_capsule(const py::capsule& capsule) {
  if (PyCapsule_IsValid(capsule.ptr(), "dltensor_versioned")) {
    throw DLPackError("got a versioned DLPack capsule; hfport reads the legacy 'dltensor' "
                      "capsule (call x.__dlpack__() without max_version)");
  }
  if (!PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    throw DLPackError("expected an unused 'dltensor' capsule (a capsule can be consumed once)");
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
  if (PyCapsule_SetName(capsule.ptr(), kUsedCapsuleName) != 0) throw py::error_already_set();
  return from_dlpack(managed);
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
  auto capsule = value.attr("__dlpack__")().cast<py::capsule>();
  if (PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    const auto* managed =
        static_cast<const DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
    if (managed->dl_tensor.device.device_type == kDLCUDA) {
      capsule = value.attr("__dlpack__")(py::arg("stream") = 1).cast<py::capsule>();
    }
  }
  return import_capsule(capsule);
}

// __dlpack__(stream, max_version, dl_device, copy) of the DLPack Python spec. A request for
// another device is served by a copy unless copy=False; copy=True copies on the same device.
py::capsule dlpack_export(const Tensor& t, const py::object& stream, const py::object& dl_device,
                          const py::object& copy) {
  const std::optional<bool> copy_flag =
      copy.is_none() ? std::nullopt : std::optional<bool>(copy.cast<bool>());
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
  }
  prepare_dlpack_consumer_stream(
      out, stream.is_none() ? std::nullopt : std::optional<int64_t>(stream.cast<int64_t>()));
  return export_capsule(out);
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
  static const std::pair<const char*, DType> kAliases[] = {
      {"float32", DType::F32}, {"float", DType::F32},   {"fp32", DType::F32},
      {"float16", DType::F16}, {"half", DType::F16},    {"fp16", DType::F16},
      {"bfloat16", DType::BF16}, {"float64", DType::F64}, {"double", DType::F64},
      {"fp64", DType::F64},
  };
  for (const auto& [alias, dtype] : kAliases) {
    if (lower == alias) return dtype;
  }
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (auto dtype = dtype_from_name(upper)) return *dtype;
  throw DTypeError("unknown dtype '" + name + "'; use a safetensors name (F32, BF16, ...) or "
                   "float32 / float16 / bfloat16 / float64");
}

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
      .def_property_readonly("numel", &Tensor::numel)
      .def_property_readonly("nbytes", &Tensor::nbytes)
      .def_property_readonly("itemsize", [](const Tensor& t) { return dtype_size(t.dtype()); })
      .def_property_readonly("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data()); })
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("contiguous", &Tensor::contiguous, "a contiguous copy, or this tensor if it already is one")
      .def("clone", &Tensor::clone, "a contiguous copy in new host memory")
      .def("to", [](const Tensor& t, const std::string& dtype) {
             const DType target = dtype_from_user_name(dtype);
             py::gil_scoped_release unlocked;
             return cast(t, target);
           }, py::arg("dtype"),
           "cast to F32 / F64 / F16 / BF16 (multithreaded); returns this tensor if already that dtype")
      .def("to_device", [](const Tensor& t, const std::string& device) {
             const Device target = parse_device(device);
             py::gil_scoped_release unlocked;
             return to_device(t, target);
           }, py::arg("device"),
           "'cpu', 'cuda' or 'cuda:N': a contiguous copy there, or this tensor if already there. "
           "Runs on hfport's stream (the legacy default stream); a copy to the CPU has finished "
           "when it returns")
      .def("view_dtype", [](const Tensor& t, const std::string& dtype) {
             return t.view_dtype(dtype_from_user_name(dtype));
           }, py::arg("dtype"), "the same bytes read as another dtype of the same size")
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
      .def("__dlpack__",
           [](const Tensor& t, py::object stream, py::object max_version, py::object dl_device,
              py::object copy) {
             (void)max_version;  // we always answer with the legacy capsule, as the spec allows
             return dlpack_export(t, stream, dl_device, copy);
           },
           py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
           py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const Tensor& t) {
        const Device d = t.device();
        return py::make_tuple(d.type == DeviceType::CPU ? static_cast<int>(kDLCPU)
                                                        : static_cast<int>(kDLCUDA),
                              d.index);
      })
      .def("__repr__", [](const Tensor& t) {
        return "hfport.Tensor(shape=" + shape_to_string(t.shape()) + ", dtype=" +
               std::string(dtype_name(t.dtype())) + ", device=" + device_name(t.device()) + ")";
      });

  m.def("_tensor_from_capsule", &import_capsule, py::arg("capsule"),
        "consume a 'dltensor' capsule; the tensor shares its memory");
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
