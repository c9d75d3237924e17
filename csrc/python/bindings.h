// Shared declarations of the _hfport module's parts. Only csrc/python includes pybind11.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "core/dtype.h"

namespace hfport::python {

namespace py = pybind11;

void bind_errors(py::module_& m);
void bind_tensor(py::module_& m);
void bind_checkpoint(py::module_& m);

// "F32", "float32", "fp32", "bfloat16", "bf16", ... -> DType; DTypeError listing the names otherwise.
DType dtype_from_user_name(const std::string& name);

}  // namespace hfport::python
