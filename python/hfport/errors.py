"""hfport's exceptions: one class per C++ error class, with the same names and parents.

Every message names the file (and the tensor) and states what was expected and what was found.
``Error`` is the root; ``HeaderError`` and ``ShardError`` group the safetensors-header and the
sharded-index rules. ``TensorNotFoundError`` is also a ``KeyError``, ``SliceError`` an
``IndexError``, ``ArgumentError`` (a bad op argument) a ``ValueError``, ``FileError`` an ``OSError``, ``DLPackError`` a ``BufferError``. ``SpecError``
covers family specs, ``LoadError`` a strict load that found missing, unexpected or mismatched
tensors, ``UnknownFamilyError`` a config.json that names no known family.
``CheckpointClosedError`` (also a ``ValueError``, as for a closed file) is a checkpoint used after
``close()``. ``SamplingRateError`` (an ``ArgumentError``) is audio at another sampling rate than an
audio front end's: hfport never resamples.

``PickleConversionError`` is the one class without a C++ twin: `hfport convert-pickle` runs only in
Python (torch reads the pickle, in a child process), so no C++ code could throw it.
"""

from hfport._hfport import (
    ArgumentError,
    CheckpointClosedError,
    ConfigError,
    CudaError,
    DeviceError,
    DLPackError,
    DTypeConversionError,
    DTypeError,
    DuplicateKeyError,
    DuplicateTensorError,
    Error,
    ExpressionError,
    FileError,
    FileSizeError,
    HeaderEncodingError,
    HeaderError,
    HeaderJsonError,
    HeaderLengthError,
    HeaderTooLargeError,
    LayoutError,
    LoadError,
    MetadataError,
    MissingShardError,
    OffsetsError,
    SamplingRateError,
    ShapeError,
    ShardError,
    ShardIndexError,
    ShardPathError,
    ShardTensorMissingError,
    SliceError,
    SpecError,
    TensorEntryError,
    TensorNotFoundError,
    UnknownFamilyError,
    UnsupportedFormatError,
)


class PickleConversionError(Error):
    """A pickle checkpoint that `hfport convert-pickle` could not convert: torch.load with
    weights_only=True refused or failed to read it, it holds no state dict, or its index or the
    output folder is unusable."""


__all__ = [
    "ArgumentError",
    "CheckpointClosedError",
    "ConfigError",
    "CudaError",
    "DLPackError",
    "DTypeConversionError",
    "DTypeError",
    "DeviceError",
    "DuplicateKeyError",
    "DuplicateTensorError",
    "Error",
    "ExpressionError",
    "FileError",
    "FileSizeError",
    "HeaderEncodingError",
    "HeaderError",
    "HeaderJsonError",
    "HeaderLengthError",
    "HeaderTooLargeError",
    "LayoutError",
    "LoadError",
    "MetadataError",
    "MissingShardError",
    "OffsetsError",
    "PickleConversionError",
    "SamplingRateError",
    "ShapeError",
    "ShardError",
    "ShardIndexError",
    "ShardPathError",
    "ShardTensorMissingError",
    "SliceError",
    "SpecError",
    "TensorEntryError",
    "TensorNotFoundError",
    "UnknownFamilyError",
    "UnsupportedFormatError",
]

for _cls in (globals()[_name] for _name in __all__):
    _cls.__module__ = __name__  # show hfport.errors.HeaderError, not hfport._hfport.HeaderError
