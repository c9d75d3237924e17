"""hfport's exceptions: one class per C++ error class, with the same names and parents.

Every message names the file (and the tensor) and states what was expected and what was found.
``Error`` is the root; ``HeaderError`` and ``ShardError`` group the safetensors-header and the
sharded-index rules. ``TensorNotFoundError`` is also a ``KeyError``, ``SliceError`` an
``IndexError``, ``ArgumentError`` (a bad op argument) a ``ValueError``, ``FileError`` an ``OSError``, ``DLPackError`` a ``BufferError``. ``SpecError``
covers family specs, ``LoadError`` a strict load that found missing, unexpected or mismatched
tensors, ``UnknownFamilyError`` a config.json that names no known family.
"""

from hfport._hfport import (
    ArgumentError,
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

__all__ = [
    "ArgumentError",
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
