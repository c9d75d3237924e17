// Native models seen from Python: hfport._hfport.Model, built by load_model. python/hfport/models.py
// wraps it in from_pretrained and a callable.
#include <pybind11/stl.h>

#include "core/device.h"
#include "core/error.h"
#include "models/model.h"
#include "python/bindings.h"

namespace hfport::python {

void bind_models(py::module_& m) {
  using hfport::models::Model;
  py::class_<Model>(m, "Model")
      .def_property_readonly("family", &Model::family)
      .def_property_readonly("config", [](const Model& model) {
        return py::module_::import("json").attr("loads")(model.config().dump());
      })
      .def("forward",
           [](Model& model, py::handle input_ids, const py::object& attention_mask,
              bool output_hidden_states) {
             const Tensor ids = tensor_arg(input_ids, "input_ids");
             const Tensor mask = optional_tensor_arg(attention_mask, "attention_mask");
             hfport::models::ModelOutput out;
             {
               py::gil_scoped_release unlocked;
               out = model.forward(ids, mask, output_hidden_states);
             }
             py::dict result;
             if (out.logits.defined()) result["logits"] = out.logits;
             if (out.last_hidden_state.defined()) result["last_hidden_state"] = out.last_hidden_state;
             if (out.pooled.defined()) result["pooled"] = out.pooled;
             if (output_hidden_states) result["hidden_states"] = out.hidden_states;
             return result;
           },
           py::arg("input_ids"), py::arg("attention_mask") = py::none(),
           py::arg("output_hidden_states") = false)
      .def("generate",
           [](Model& model, py::handle input_ids, int64_t max_new_tokens) {
             const Tensor ids = tensor_arg(input_ids, "input_ids");
             py::gil_scoped_release unlocked;
             return model.generate(ids, max_new_tokens);
           },
           py::arg("input_ids"), py::arg("max_new_tokens"));
  m.def("_load_model",
        [](const std::string& path, const std::optional<std::string>& spec_text,
           const std::string& spec_origin, const std::string& dtype, const std::string& device,
           bool strict, const std::string& heads) {
          const auto spec = spec_from_text(spec_text, spec_origin);
          LoadOptions options;
          options.dtype = dtype_from_user_name(dtype);
          options.device = parse_device(device);
          options.strict = strict;
          options.heads = head_mode_from_name(heads);
          LoadReport report;
          std::unique_ptr<hfport::models::Model> model;
          {
            py::gil_scoped_release unlocked;
            model = hfport::models::load_model(path, spec ? &*spec : nullptr, options, &report);
          }
          return py::make_tuple(std::move(model), report_tuple(report));
        },
        py::arg("path"), py::arg("spec_text"), py::arg("spec_origin"), py::arg("dtype"),
        py::arg("device"), py::arg("strict"), py::arg("heads"));
  m.def("_native_families", &hfport::models::native_families);
}

}  // namespace hfport::python
