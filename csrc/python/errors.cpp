// hfport::Error and its subclasses become Python exceptions of the same names and parents.
// pybind11 tries translators newest first, so parents are registered before their children.
#include "core/error.h"
#include "python/bindings.h"

namespace hfport::python {

void bind_errors(py::module_& m) {
  auto base = py::register_exception<Error>(m, "Error", PyExc_RuntimeError);
  auto header = py::register_exception<HeaderError>(m, "HeaderError", base);
  auto shard = py::register_exception<ShardError>(m, "ShardError", base);

  py::register_exception<FileError>(m, "FileError", py::make_tuple(base, py::handle(PyExc_OSError)));
  py::register_exception<UnsupportedFormatError>(m, "UnsupportedFormatError", base);
  py::register_exception<HeaderLengthError>(m, "HeaderLengthError", header);
  py::register_exception<HeaderTooLargeError>(m, "HeaderTooLargeError", header);
  py::register_exception<HeaderEncodingError>(m, "HeaderEncodingError", header);
  py::register_exception<HeaderJsonError>(m, "HeaderJsonError", header);
  py::register_exception<DuplicateKeyError>(m, "DuplicateKeyError", header);
  py::register_exception<MetadataError>(m, "MetadataError", header);
  py::register_exception<TensorEntryError>(m, "TensorEntryError", header);
  py::register_exception<DTypeError>(m, "DTypeError", header);
  py::register_exception<ShapeError>(m, "ShapeError", header);
  py::register_exception<OffsetsError>(m, "OffsetsError", header);
  py::register_exception<LayoutError>(m, "LayoutError", header);
  py::register_exception<FileSizeError>(m, "FileSizeError", header);
  py::register_exception<ShardIndexError>(m, "ShardIndexError", shard);
  py::register_exception<ShardPathError>(m, "ShardPathError", shard);
  py::register_exception<MissingShardError>(m, "MissingShardError", shard);
  py::register_exception<ShardTensorMissingError>(m, "ShardTensorMissingError", shard);
  py::register_exception<DuplicateTensorError>(m, "DuplicateTensorError", shard);
  auto config = py::register_exception<ConfigError>(m, "ConfigError", base);
  py::register_exception<UnknownFamilyError>(m, "UnknownFamilyError", config);
  auto spec = py::register_exception<SpecError>(m, "SpecError", base);
  py::register_exception<ExpressionError>(m, "ExpressionError", spec);
  py::register_exception<LoadError>(m, "LoadError", base);
  auto argument = py::register_exception<ArgumentError>(
      m, "ArgumentError", py::make_tuple(base, py::handle(PyExc_ValueError)));
  py::register_exception<SamplingRateError>(m, "SamplingRateError", argument);
  py::register_exception<TensorNotFoundError>(m, "TensorNotFoundError",
                                              py::make_tuple(base, py::handle(PyExc_KeyError)));
  py::register_exception<CheckpointClosedError>(
      m, "CheckpointClosedError", py::make_tuple(base, py::handle(PyExc_ValueError)));
  py::register_exception<SliceError>(m, "SliceError",
                                     py::make_tuple(base, py::handle(PyExc_IndexError)));
  py::register_exception<DTypeConversionError>(m, "DTypeConversionError",
                                               py::make_tuple(base, py::handle(PyExc_TypeError)));
  py::register_exception<DLPackError>(m, "DLPackError",
                                      py::make_tuple(base, py::handle(PyExc_BufferError)));
  py::register_exception<DeviceError>(m, "DeviceError", base);
  py::register_exception<CudaError>(m, "CudaError", base);
}

}  // namespace hfport::python
