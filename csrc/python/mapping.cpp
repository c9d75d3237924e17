// hfport's mapping and loading seen from Python: built-in family specs, the strict loader and the
// report. python/hfport/load.py wraps these in `hfport.load`, `hfport.map_checkpoint` and
// `LoadReport`; the report crosses as JSON plus its rendered text.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "core/device.h"
#include "core/error.h"
#include "mapping/family_spec.h"
#include "mapping/loader.h"
#include "python/bindings.h"

namespace hfport::python {

std::optional<FamilySpec> spec_from_text(const std::optional<std::string>& text,
                                         const std::string& origin) {
  if (!text) return std::nullopt;
  return parse_family_spec_text(*text, origin);
}

py::tuple report_tuple(const LoadReport& report) {
  return py::make_tuple(report.to_json().dump(), report.to_text(),
                        report.ok() ? std::string() : report.error_message());
}

void bind_mapping(py::module_& m) {
  m.def("_builtin_families", &builtin_family_names, "names of the built-in family specs");
  m.def("_family_spec_json", &builtin_family_json, py::arg("name"),
        "a built-in family spec's JSON text");
  m.def("_check_spec", [](const std::string& text, const std::string& origin) {
          parse_family_spec_text(text, origin);
        },
        py::arg("text"), py::arg("origin"), "validate a spec; SpecError says what is wrong");
  m.def("_map",
        [](const std::string& path, const std::optional<std::string>& spec_text,
           const std::string& spec_origin, const std::string& heads) {
          const auto spec = spec_from_text(spec_text, spec_origin);
          const HeadMode mode = head_mode_from_name(heads);
          LoadReport report;
          {
            py::gil_scoped_release unlocked;
            const auto checkpoint = Checkpoint::open(path);
            report = map_checkpoint(*checkpoint, spec ? &*spec : nullptr, mode);
          }
          return report_tuple(report);
        },
        py::arg("path"), py::arg("spec_text"), py::arg("spec_origin"), py::arg("heads") = "auto");
  m.def("_load",
        [](const std::string& path, const std::optional<std::string>& spec_text,
           const std::string& spec_origin, const std::optional<std::string>& dtype, bool strict,
           bool stats, std::optional<std::function<void(uint64_t, uint64_t)>> progress,
           const std::string& device, std::optional<int64_t> staging_bytes,
           std::optional<int> staging_buffers, const std::string& heads) {
          LoadOptions options;
          options.heads = head_mode_from_name(heads);
          options.device = parse_device(device);
          options.upload = upload_options_arg(options.device, staging_bytes, staging_buffers);
          const auto spec = spec_from_text(spec_text, spec_origin);
          if (dtype) options.dtype = dtype_from_user_name(*dtype);
          options.strict = strict;
          options.stats = stats;
          if (progress) {
            options.progress = [&progress](uint64_t done, uint64_t total) {
              py::gil_scoped_acquire locked;
              (*progress)(done, total);
            };
          }
          LoadResult result;
          {
            py::gil_scoped_release unlocked;
            result = load_checkpoint(path, spec ? &*spec : nullptr, options);
          }
          py::dict state;
          for (auto& [name, tensor] : result.state) state[py::str(name)] = py::cast(tensor);
          return py::make_tuple(state, report_tuple(result.report));
        },
        py::arg("path"), py::arg("spec_text"), py::arg("spec_origin"), py::arg("dtype"),
        py::arg("strict"), py::arg("stats"), py::arg("progress"), py::arg("device") = "cpu",
        py::arg("staging_bytes") = py::none(), py::arg("staging_buffers") = py::none(),
        py::arg("heads") = "auto");
}

}  // namespace hfport::python
