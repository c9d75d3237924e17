// hfport.Checkpoint for Python: a read-only mapping of tensor names to zero-copy hfport.Tensor
// views, with the safetensors-style extras (metadata, get_slice) and config.json as a dict.
#include <pybind11/stl.h>

#include "core/checkpoint.h"
#include "core/device.h"
#include "core/error.h"
#include "core/load_tensors.h"
#include "core/safetensors_writer.h"
#include "core/tensor_diff.h"
#include "python/bindings.h"

namespace hfport::python {

UploadOptions upload_options_arg(const Device& device, std::optional<int64_t> staging_bytes,
                                 std::optional<int> staging_buffers) {
  UploadOptions options;
  if (!staging_bytes && !staging_buffers) return options;
  if (device.type != DeviceType::CUDA) {
    throw ArgumentError("staging_bytes and staging_buffers size the pinned buffers of a load to "
                        "a CUDA device; this load is to " + device_name(device));
  }
  if (staging_bytes) options.staging_bytes = *staging_bytes;
  if (staging_buffers) options.staging_buffers = *staging_buffers;
  validate_upload_options(options);
  return options;
}

void bind_checkpoint(py::module_& m) {
  py::class_<Checkpoint, std::shared_ptr<Checkpoint>>(
      m, "Checkpoint",
      "A safetensors file or sharded folder, mapped and validated. ck[name] is a zero-copy view; "
      "the mapping lives as long as any view or exported tensor does.")
      .def_static("open", [](const std::string& path, bool mmap) {
        py::gil_scoped_release unlocked;
        return Checkpoint::open(path, mmap ? FileAccess::Map : FileAccess::Read);
      }, py::arg("path"), py::kw_only(), py::arg("mmap") = true,
      "mmap=False reads every file into memory instead of mapping it, for files that may change "
      "while in use (a truncated mapped file kills the reader with SIGBUS)")
      .def_property_readonly("path", &Checkpoint::path)
      .def_property_readonly("is_sharded", &Checkpoint::is_sharded)
      .def_property_readonly("shards", [](const Checkpoint& ck) {
        std::vector<std::string> paths;
        for (const auto& shard : ck.shards()) paths.push_back(shard->path());
        return paths;
      }, "paths of the safetensors files (sorted by file name for a sharded checkpoint)")
      .def("keys", &Checkpoint::names, "tensor names, sorted")
      .def("__len__", &Checkpoint::size)
      .def("__contains__", &Checkpoint::contains, py::arg("name"))
      .def("__iter__", [](const Checkpoint& ck) {
        return py::iter(py::cast(ck.names()));
      })
      .def("__getitem__", &Checkpoint::tensor, py::arg("name"))
      .def("get_tensor", &Checkpoint::tensor, py::arg("name"), "same as ck[name]")
      .def("get_slice", &Checkpoint::tensor, py::arg("name"),
           "a lazy view to index like safetensors' get_slice: ck.get_slice(n)[:, 2:4]; only "
           "the pages holding the selected elements are ever read")
      .def("info", [](const Checkpoint& ck, const std::string& name) {
        const TensorInfo& t = ck.info(name);
        py::dict d;
        d["dtype"] = std::string(dtype_name(t.dtype));
        d["shape"] = t.shape;
        d["nbytes"] = t.end - t.begin;
        d["data_offsets"] = py::make_tuple(t.begin, t.end);
        d["shard"] = ck.shard_of(name).path();
        return d;
      }, py::arg("name"), "dtype, shape, byte size, offsets and file of one tensor, reading no data")
      .def("load_all",
           [](const Checkpoint& ck, const std::string& device,
              const std::optional<std::vector<std::string>>& names,
              const py::object& dtype, std::optional<int64_t> staging_bytes,
              std::optional<int> staging_buffers) {
             TensorLoadOptions options;
             options.device = parse_device(device);
             options.upload = upload_options_arg(options.device, staging_bytes, staging_buffers);
             options.dtype = optional_dtype_arg(dtype);
             std::vector<std::pair<std::string, Tensor>> loaded;
             {
               py::gil_scoped_release unlocked;
               loaded = load_tensors(ck, names ? *names : ck.names(), options);
             }
             py::dict out;
             for (auto& [name, tensor] : loaded) out[py::str(name)] = py::cast(tensor);
             return out;
           },
           py::arg("device") = "cpu", py::arg("names") = py::none(),
           py::arg("dtype") = py::none(), py::kw_only(), py::arg("staging_bytes") = py::none(),
           py::arg("staging_buffers") = py::none(),
           "every tensor (or those in `names`) under its own name, as a dict, on `device`: 'cpu' "
           "gives the zero-copy views; 'cuda' / 'cuda:N' uploads them all in one pass through "
           "pinned staging buffers (staging_buffers x staging_bytes, default 8 x 32 MiB) with "
           "copies overlapped on streams, the results sharing one device allocation. dtype casts "
           "every floating-point tensor (on the device, after upload, for CUDA). The device is "
           "checked before anything is read")
      .def("metadata", &Checkpoint::metadata,
           "__metadata__ of a single file; the index's metadata for a sharded checkpoint")
      .def_property_readonly("config", [](const Checkpoint& ck) -> py::object {
        if (ck.config().is_null()) return py::none();
        return py::module_::import("json").attr("loads")(ck.config().dump());
      }, "config.json beside the checkpoint as a dict, or None")
      .def("close", &Checkpoint::close,
           "drop this checkpoint's hold on its files; later access raises CheckpointClosedError. "
           "Tensors already taken stay valid: each keeps its file mapped until it is gone")
      .def_property_readonly("closed", &Checkpoint::closed)
      .def("__enter__", [](const std::shared_ptr<Checkpoint>& ck) { return ck; })
      .def("__exit__", [](Checkpoint& ck, const py::args&) { ck.close(); },
           "closes the checkpoint, as safetensors' safe_open does")
      .def("__repr__", [](const Checkpoint& ck) {
        if (ck.closed()) return "hfport.Checkpoint('" + ck.path() + "', closed)";
        return "hfport.Checkpoint('" + ck.path() + "', " + std::to_string(ck.size()) +
               " tensors, " + std::to_string(ck.shards().size()) + " file(s))";
      });

  m.def("write_safetensors",
        [](const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
           const std::map<std::string, std::string>& metadata) {
          py::gil_scoped_release unlocked;
          write_safetensors(path, tensors, metadata);
        },
        py::arg("path"), py::arg("tensors"), py::arg("metadata") = std::map<std::string, std::string>{},
        "write (name, hfport.Tensor) pairs as a safetensors file (atomically: a temporary file "
        "renamed into place)");
  m.def("tensor_difference",
        [](const Tensor& a, const Tensor& b) {
          TensorDifference d;
          {
            py::gil_scoped_release unlocked;
            d = tensor_difference(a, b);
          }
          py::dict out;
          out["numel"] = d.numel;
          out["differing"] = d.differing;
          out["nan_mismatch"] = d.nan_mismatch;
          out["inf_mismatch"] = d.inf_mismatch;
          out["max_abs"] = d.max_abs;
          out["max_rel"] = d.max_rel;
          out["rel_l2"] = d.rel_l2;
          return out;
        },
        py::arg("a"), py::arg("b"),
        "element-wise comparison in float64: differing count, max abs / rel error, relative L2");
}

}  // namespace hfport::python
