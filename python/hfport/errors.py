"""hfport's exceptions: one class per C++ error class, with the same names and parents.

Every message names the file (and the tensor) and states what was expected and what was found.
``Error`` is the root; ``HeaderError`` and ``ShardError`` group the safetensors-header and the
sharded-index rules. ``TensorNotFoundError`` is also a ``KeyError``, ``SliceError`` an
``IndexError``, ``FileError`` an ``OSError``, ``DLPackError`` a ``BufferError``.
"""

from hfport._hfport import (
    ConfigError,
    CudaError,
    DeviceError,
    DLPackError,
    DTypeConversionError,
    DTypeError,
    DuplicateKeyError,
    DuplicateTensorError,
    Error,
    FileError,
    FileSizeError,
    HeaderEncodingError,
    HeaderError,
    HeaderJsonError,
    HeaderLengthError,
    HeaderTooLargeError,
    LayoutError,
    MetadataError,
    MissingShardError,
    OffsetsError,
    ShapeError,
    ShardError,
    ShardIndexError,
    ShardPathError,
    ShardTensorMissingError,
    SliceError,
    TensorEntryError,
    TensorNotFoundError,
    UnsupportedFormatError,
)

__all__ = [
    "ConfigError",
    "CudaError",
    "DLPackError",
    "DTypeConversionError",
    "DTypeError",
    "DeviceError",
    "DuplicateKeyError",
    "DuplicateTensorError",
    "Error",
    "FileError",
    "FileSizeError",
    "HeaderEncodingError",
    "HeaderError",
    "HeaderJsonError",
    "HeaderLengthError",
    "HeaderTooLargeError",
    "LayoutError",
    "MetadataError",
    "MissingShardError",
    "OffsetsError",
    "ShapeError",
    "ShardError",
    "ShardIndexError",
    "ShardPathError",
    "ShardTensorMissingError",
    "SliceError",
    "TensorEntryError",
    "TensorNotFoundError",
    "UnsupportedFormatError",
]

for _cls in (globals()[_name] for _name in __all__):
    _cls.__module__ = __name__  # show hfport.errors.HeaderError, not hfport._hfport.HeaderError
