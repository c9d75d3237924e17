// Planning a load: a family spec, expanded over config.json, matched against a checkpoint's names
// and shapes, without reading any tensor data. `hfport map` prints this plan's report; `load`
// executes it.
//
// The base model's rules come first, then the selected head's. A base rule's source names are read
// under the spec's base_prefix when the checkpoint's names carry it (a task class such as
// BertForMaskedLM saved them as bert.*), and without it otherwise (BertModel saved them bare),
// however the rule writes them; a head rule's names are read as written.
//
// Every rule is expanded over its captures' ranges (skipping instances whose `when` is false).
// Each instance's source shapes are pushed through the rule's ops (concat, weight_norm, transpose,
// reshape/squeeze, split) and compared with the shape the spec derives from config.json. Sources a
// rule uses are consumed; what remains is ignored (by a pattern) or unexpected.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "mapping/family_spec.h"
#include "mapping/load_report.h"

namespace hfport {

struct PlanStep {
  const SpecRule* rule = nullptr;
  Captures captures;
  std::vector<std::string> sources;   // concrete checkpoint names
  std::vector<size_t> entries;        // report.params indices, one per target
  std::vector<int64_t> split_sizes;   // evaluated
  Shape reshape;                      // evaluated (empty: none)
  bool runnable = false;              // every entry is Loaded
};

// Steps point at rules inside `spec`: a plan moves, it is never copied.
struct LoadPlan {
  LoadPlan() = default;
  LoadPlan(const LoadPlan&) = delete;
  LoadPlan& operator=(const LoadPlan&) = delete;
  LoadPlan(LoadPlan&&) = default;
  LoadPlan& operator=(LoadPlan&&) = default;

  FamilySpec spec;
  nlohmann::json config;              // config.json with the spec's defaults applied
  LoadReport report;
  std::vector<PlanStep> steps;
};

// What a load does with a task head (see family_spec.h, SpecHead):
//   Auto     load the head config.json's architectures select; the tensors of a head the spec
//            does not know are reported in their own section (report.head_tensors), not an error
//   Require  as Auto, but a strict load fails when any head tensor is left unloaded
//   None     load the base model only; every head tensor goes to report.head_tensors
enum class HeadMode { Auto, Require, None };
HeadMode head_mode_from_name(const std::string& name);  // "auto", "require", "none"

// Throws ConfigError when config.json fails one of the spec's `requires`.
LoadPlan plan_load(const Checkpoint& checkpoint, const FamilySpec& spec,
                   HeadMode heads = HeadMode::Auto);

// `*` matches any run of characters (dots included); everything else literally.
bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace hfport
