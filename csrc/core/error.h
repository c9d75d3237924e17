// hfport's one error hierarchy. Every failure a user can cause is one of these classes, and every
// message names the file (and the tensor when there is one) and says what was expected and what was
// found. The Python module maps each class to an exception of the same name in `hfport.errors`, with
// the same parent, so `except hfport.errors.HeaderError` catches every header problem.
//
//   Error
//   ├── FileError                 the file or folder cannot be opened, read or mapped
//   ├── UnsupportedFormatError    a pickle checkpoint (.bin/.pt/.pth/.ckpt), never unpickled
//   ├── HeaderError               the safetensors header breaks a rule
//   │   ├── HeaderLengthError       the 8-byte length is missing or points beyond the file
//   │   ├── HeaderTooLargeError     the header is over 100 MB
//   │   ├── HeaderEncodingError     the header is not valid UTF-8
//   │   ├── HeaderJsonError         not JSON, or not a JSON object
//   │   ├── DuplicateKeyError       a key appears twice in one JSON object
//   │   ├── MetadataError           __metadata__ is not a map of strings to strings
//   │   ├── TensorEntryError        an entry is not {dtype, shape, data_offsets}
//   │   ├── DTypeError              an unknown dtype name
//   │   ├── ShapeError              a negative, non-integer or overflowing shape
//   │   ├── OffsetsError            data_offsets malformed, reversed, or size != shape * dtype
//   │   ├── LayoutError             the data buffer has a gap, an overlap, or does not start at 0
//   │   └── FileSizeError           the file is not exactly 8 + header + data bytes (truncated/trailing)
//   ├── ShardError                a sharded checkpoint's index or shards break a rule
//   │   ├── ShardIndexError         index.json malformed, or a shard tensor the index does not list
//   │   ├── ShardPathError          a shard path that is absolute, has `..`, or links out of the folder
//   │   ├── MissingShardError       a shard named by the index does not exist
//   │   ├── ShardTensorMissingError a tensor the index names is not in the shard it names
//   │   └── DuplicateTensorError    one tensor name in two shards
//   ├── ConfigError               config.json is unreadable or not a JSON object
//   │   └── UnknownFamilyError      config.json names no family hfport has a spec for
//   ├── SpecError                 a family spec breaks the format (unknown field, bad pattern/syntax)
//   │   └── ExpressionError         a spec expression cannot be evaluated on this config.json
//   ├── LoadError                 a strict load found missing, unexpected or mismatched tensors
//   ├── ArgumentError             an op given a tensor or option it cannot take (shape, dtype, strides)
//   │   └── SamplingRateError       audio at another sampling rate than the front end's (never resampled)
//   ├── TensorNotFoundError       no tensor of that name (in Python also a KeyError)
//   ├── CheckpointClosedError     a checkpoint used after close() (in Python also a ValueError)
//   ├── SliceError                an index or slice outside a tensor's shape
//   ├── DTypeConversionError      a cast between dtypes hfport does not convert
//   ├── DLPackError               a tensor that cannot cross DLPack (device, dtype, lanes)
//   ├── DeviceError               a host operation given a tensor on another device
//   └── CudaError                 a CUDA runtime call or kernel launch failed
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace hfport {

// `text` with control characters written as \xNN (newline and tab kept when asked). Messages
// quote names taken from files (tensor names, shard paths), which may hold any character; a NUL
// would cut a message short wherever it is read as a C string (what(), Python's exception text).
// Every Error's message goes through it keeping newlines; a name quoted on its own line of a
// message may escape them too.
std::string printable(std::string_view text, bool keep_newlines = false);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(printable(message, true)) {}
};

#define HFPORT_ERROR_CLASS(Name, Parent)                                   \
  class Name : public Parent {                                             \
   public:                                                                 \
    explicit Name(const std::string& message) : Parent(message) {}        \
  };

HFPORT_ERROR_CLASS(FileError, Error)
HFPORT_ERROR_CLASS(UnsupportedFormatError, Error)
HFPORT_ERROR_CLASS(HeaderError, Error)
HFPORT_ERROR_CLASS(HeaderLengthError, HeaderError)
HFPORT_ERROR_CLASS(HeaderTooLargeError, HeaderError)
HFPORT_ERROR_CLASS(HeaderEncodingError, HeaderError)
HFPORT_ERROR_CLASS(HeaderJsonError, HeaderError)
HFPORT_ERROR_CLASS(DuplicateKeyError, HeaderError)
HFPORT_ERROR_CLASS(MetadataError, HeaderError)
HFPORT_ERROR_CLASS(TensorEntryError, HeaderError)
HFPORT_ERROR_CLASS(DTypeError, HeaderError)
HFPORT_ERROR_CLASS(ShapeError, HeaderError)
HFPORT_ERROR_CLASS(OffsetsError, HeaderError)
HFPORT_ERROR_CLASS(LayoutError, HeaderError)
HFPORT_ERROR_CLASS(FileSizeError, HeaderError)
HFPORT_ERROR_CLASS(ShardError, Error)
HFPORT_ERROR_CLASS(ShardIndexError, ShardError)
HFPORT_ERROR_CLASS(ShardPathError, ShardError)
HFPORT_ERROR_CLASS(MissingShardError, ShardError)
HFPORT_ERROR_CLASS(ShardTensorMissingError, ShardError)
HFPORT_ERROR_CLASS(DuplicateTensorError, ShardError)
HFPORT_ERROR_CLASS(ConfigError, Error)
HFPORT_ERROR_CLASS(UnknownFamilyError, ConfigError)
HFPORT_ERROR_CLASS(SpecError, Error)
HFPORT_ERROR_CLASS(ExpressionError, SpecError)
HFPORT_ERROR_CLASS(LoadError, Error)
HFPORT_ERROR_CLASS(ArgumentError, Error)
HFPORT_ERROR_CLASS(SamplingRateError, ArgumentError)
HFPORT_ERROR_CLASS(TensorNotFoundError, Error)
HFPORT_ERROR_CLASS(CheckpointClosedError, Error)
HFPORT_ERROR_CLASS(SliceError, Error)
HFPORT_ERROR_CLASS(DTypeConversionError, Error)
HFPORT_ERROR_CLASS(DLPackError, Error)
HFPORT_ERROR_CLASS(DeviceError, Error)
HFPORT_ERROR_CLASS(CudaError, Error)

#undef HFPORT_ERROR_CLASS

}  // namespace hfport
