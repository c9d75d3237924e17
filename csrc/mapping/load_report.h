// LoadReport: everything a load found, per native parameter and per checkpoint tensor.
//
// Every native parameter the spec declares for this config is one ReportEntry: loaded, tied to
// another, absent-but-optional, missing, or mismatched (expected vs got shape, and the config
// fields the expectation came from). Checkpoint tensors no rule used are unexpected unless an
// ignore pattern names them. Suggestions for a missing parameter are the closest checkpoint names
// by edit distance: for the reader only, nothing is ever loaded by a guess.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/stats.h"
#include "core/tensor.h"

namespace hfport {

enum class ParamStatus { Loaded, Tied, Absent, Missing, Mismatched };
std::string_view param_status_name(ParamStatus status);

struct ReportEntry {
  std::string name;                          // native name
  ParamStatus status = ParamStatus::Loaded;
  std::vector<std::string> sources;          // checkpoint names the rule reads
  std::vector<std::string> ops;              // "concat", "transpose", ... or "rename"
  Shape expected;                            // from config.json
  std::vector<std::string> fields;           // config fields the expected shape reads
  Shape got;                                 // what the ops give from the checkpoint's shapes
  std::string dtype;                         // of the loaded tensor ("" when not loaded)
  std::string detail;                        // why mismatched; the tied-to name; ...
  std::vector<std::string> missing_sources;  // Missing: the checkpoint names not found
  std::vector<std::string> suggestions;      // Missing: closest checkpoint names
  std::string condition;                     // Missing: the `when` its rule applies under, with
                                             // the config values that made it true
  std::optional<TensorStats> stats;          // filled by a load with statistics on
  std::string init_flag;                     // "constant 1", "normal(0, initializer_range=0.02)"
};

struct LoadReport {
  std::string path;
  std::string family;
  std::string source;
  std::string note;                          // how the checkpoint was read (a stripped base prefix)
  std::string head;                          // the head loaded ("masked_lm", ...), "" for none
  std::vector<std::string> head_tensors;     // checkpoint tensors of a head that was not loaded
  std::string head_note;                     // why not (an architecture the spec has no head for)
  std::string prefix_hint;                   // missing names that the checkpoint has under a prefix
  std::vector<std::string> warnings;         // a forced family that config.json contradicts
  // Unexpected names that a rule would read if config.json did not switch it off: name, why.
  std::vector<std::pair<std::string, std::string>> switched_off;
  std::vector<ReportEntry> params;
  std::vector<std::string> unexpected;
  std::vector<std::pair<std::string, std::string>> ignored;  // name, why

  size_t count(ParamStatus status) const;
  bool ok() const;  // nothing missing, mismatched or unexpected (unloaded head tensors are not)

  nlohmann::json to_json() const;
  // The compact table: problems first, runs of layers folded (blk.{0..31}.attn_qkv.weight).
  std::string to_text() const;
  // One message listing every problem, for LoadError.
  std::string error_message() const;
};

// Fills each missing entry's suggestions from the checkpoint names (unexpected ones first), and
// the prefix hint when most missing names are in the checkpoint under one prefix (or without one).
void add_suggestions(LoadReport& report, const std::vector<std::string>& checkpoint_names);

// Folds names that differ only in their integer parts: blk.0.x, blk.1.x -> "blk.{0..1}.x".
// With `linked`, integer parts that always hold the same value count as one dimension, for lines
// that pair a native name with its sources ("blk.3.x <- layers.3.y" -> "blk.{0..5}.x <- layers.{0..5}.y").
std::vector<std::string> fold_layer_runs(const std::vector<std::string>& names, bool linked = false);

}  // namespace hfport
