// The strict loader: plan a checkpoint against a family spec, then make every native tensor.
//
// Strict (the default) throws LoadError listing every problem at once, before any tensor is made.
// Permissive returns the report and leaves missing and mismatched parameters out of the state.
// Nothing is ever loaded by a guess or filled with random or constant values.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.h"
#include "mapping/family_spec.h"
#include "mapping/load_plan.h"
#include "mapping/load_report.h"

namespace hfport {

struct LoadOptions {
  std::optional<DType> dtype;   // cast every floating-point parameter to this
  bool strict = true;
  bool stats = true;            // per-tensor statistics and fresh-initialisation flags
  // Called on the calling thread after each parameter: (bytes done, bytes total).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct LoadResult {
  std::vector<std::pair<std::string, Tensor>> state;  // native name -> tensor, in spec order
  LoadReport report;
};

// `spec` null: the built-in family config.json selects (UnknownFamilyError when none does).
LoadResult load_checkpoint(const Checkpoint& checkpoint, const FamilySpec* spec,
                           const LoadOptions& options);
LoadResult load_checkpoint(const std::string& path, const FamilySpec* spec = nullptr,
                           const LoadOptions& options = {});

// The report alone, from names and shapes: no tensor data is read.
LoadReport map_checkpoint(const Checkpoint& checkpoint, const FamilySpec* spec);

}  // namespace hfport
