// Tensors of a checkpoint under their own names, on a device and optionally cast: the raw
// counterpart of the strict loader (no family spec, no renames, no report), behind Python's
// Checkpoint.load_all. What safetensors' load_file(path, device=...) returns, as hfport tensors.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.h"
#include "core/cuda_upload.h"

namespace hfport {

struct TensorLoadOptions {
  // CPU: the zero-copy views into the mapping (a cast makes host copies). CUDA: every tensor
  // uploaded in one staged, overlapped pass (cuda_upload.h), casts run on the device.
  Device device;
  std::optional<DType> dtype;  // every floating-point tensor cast to this; others kept as they are
  UploadOptions upload;        // staging for a CUDA device
};

// (name, tensor) for each of `names`, in that order. Checked before any work: the upload options
// (ArgumentError), the device (DeviceError saying why it cannot be used), every name
// (TensorNotFoundError). A CUDA load then follows upload_to_device.
std::vector<std::pair<std::string, Tensor>> load_tensors(const Checkpoint& checkpoint,
                                                          const std::vector<std::string>& names,
                                                          const TensorLoadOptions& options);

}  // namespace hfport
