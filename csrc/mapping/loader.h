// The strict loader: plan a checkpoint against a family spec, then make every native tensor.
//
// Strict (the default) throws LoadError listing every problem at once, before any tensor is made.
// Permissive returns the report and leaves missing and mismatched parameters out of the state.
// Nothing is ever loaded by a guess or filled with random or constant values.
//
// To a CUDA device: the native tensors are made on the host exactly as for the CPU (views,
// concatenations, folds), the report and its statistics are computed there, and then every tensor
// goes up in one staged, overlapped pass (core/cuda_upload.h). A cast to `dtype` then runs on the
// device after the upload, so the statistics describe the values as the checkpoint holds them
// (identical for a widening cast such as bf16 -> f32; before rounding for a narrowing one). A
// tied parameter stays one tensor shared by both names on the device too.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.h"
#include "core/cuda_upload.h"
#include "mapping/family_spec.h"
#include "mapping/load_plan.h"
#include "mapping/load_report.h"

namespace hfport {

struct LoadOptions {
  std::optional<DType> dtype;   // cast every floating-point parameter to this
  bool strict = true;
  HeadMode heads = HeadMode::Auto;  // Require: a strict load also fails on unloaded head tensors
  bool stats = true;            // per-tensor statistics and fresh-initialisation flags
  Device device;                // where the state goes: the host, or a CUDA device (see above)
  UploadOptions upload;         // staging for a CUDA device; its progress is set from `progress`
  // Called on the calling thread: (bytes done, bytes total) of the checkpoint's bytes, after each
  // parameter is made; for a CUDA device a second run follows, bytes uploaded of bytes to upload.
  std::function<void(uint64_t, uint64_t)> progress;
};

struct LoadResult {
  std::vector<std::pair<std::string, Tensor>> state;  // native name -> tensor, in spec order
  LoadReport report;
};

// `spec` null: the built-in family config.json selects (UnknownFamilyError when none does). A
// spec given whose `match` contradicts config.json loads as asked, with a warning in the report.
// Checked first, before the checkpoint is opened or planned: for a CUDA device the upload options
// (ArgumentError) and that the device can be used (DeviceError saying why not).
LoadResult load_checkpoint(const Checkpoint& checkpoint, const FamilySpec* spec,
                           const LoadOptions& options);
LoadResult load_checkpoint(const std::string& path, const FamilySpec* spec = nullptr,
                           const LoadOptions& options = {});

// The report alone, from names and shapes: no tensor data is read.
LoadReport map_checkpoint(const Checkpoint& checkpoint, const FamilySpec* spec,
                          HeadMode heads = HeadMode::Auto);

}  // namespace hfport
