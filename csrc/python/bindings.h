// Shared declarations of the _hfport module's parts. Only csrc/python includes pybind11.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/cuda_upload.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "mapping/family_spec.h"
#include "mapping/load_report.h"

namespace hfport::python {

namespace py = pybind11;

void bind_errors(py::module_& m);

// A spec given from Python as JSON text (None: choose from config.json), and a load report as
// (JSON, rendered text, error message or "") for python/hfport/load.py's LoadReport.
std::optional<FamilySpec> spec_from_text(const std::optional<std::string>& text,
                                         const std::string& origin);
py::tuple report_tuple(const LoadReport& report);
void bind_tensor(py::module_& m);
void bind_checkpoint(py::module_& m);
void bind_mapping(py::module_& m);
void bind_attention_ops(py::module_& ops);
void bind_sequence_ops(py::module_& ops);
void bind_recurrent_ops(py::module_& ops);
void bind_vision_ops(py::module_& ops);
void bind_audio_ops(py::module_& ops);
void bind_models(py::module_& m);
// _flash_attention_for_tests (builds with CUDA only): the flash kernel on caller-owned tensors.
void bind_flash_attention_testing(py::module_& m);

// The Python type of a tensor parameter: any object, as py::object, whose signature names the
// protocol python/hfport/typing.py declares (an object with __dlpack__ and __dlpack_device__), so
// that the stubs, inspect.signature and help() say "any DLPack tensor" rather than "object".
// Nothing is checked when the argument is bound: tensor_arg below converts it and names the
// argument in its error, which beats pybind11's overload listing.
class DLPackArg : public py::object {
 public:
  static bool bind_any(PyObject*) { return true; }
  PYBIND11_OBJECT_DEFAULT(DLPackArg, py::object, bind_any)
};

// An op's tensor argument: an hfport.Tensor as is, or any DLPack producer (torch, numpy, ...)
// viewed without a copy. `arg_name` goes into the error for anything else.
Tensor tensor_arg(py::handle value, const char* arg_name);
// The same for an optional argument: None stays an undefined Tensor.
Tensor optional_tensor_arg(const py::object& value, const char* arg_name);

// "F32", "float32", "fp32", "bfloat16", "bf16", ... -> DType; DTypeError listing the names otherwise.
DType dtype_from_user_name(const std::string& name);
// A dtype argument from Python: a name as above, or a torch / numpy / ml_dtypes dtype, which
// hfport.dtypes.dtype_name (the one normaliser) turns into a name. DTypeError, one line, for
// anything else. Take dtype parameters as py::object and pass them here, so that a wrong one gets
// that line instead of pybind11's overload listing.
DType dtype_arg(py::handle value);
std::optional<DType> optional_dtype_arg(py::handle value);  // None -> nullopt

// The staging keywords of a load (None: the default). ArgumentError when one is given for the CPU
// or is out of range (validate_upload_options).
UploadOptions upload_options_arg(const Device& device, std::optional<int64_t> staging_bytes,
                                 std::optional<int> staging_buffers);

}  // namespace hfport::python

namespace pybind11::detail {
template <>
struct handle_type_name<hfport::python::DLPackArg> {
  static constexpr auto name = const_name("hfport.typing.SupportsDLPack");
};
}  // namespace pybind11::detail
