// Executing a load plan. See loader.h.
#include "mapping/loader.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "core/cast.h"
#include "core/device.h"
#include "core/error.h"
#include "mapping/mapping_ops.h"

namespace hfport {

namespace {

const FamilySpec& choose_spec(const Checkpoint& checkpoint, const FamilySpec* spec) {
  if (spec) return *spec;
  if (!checkpoint.config().is_object() || checkpoint.config().empty()) {
    throw UnknownFamilyError(checkpoint.path() + ": no config.json to choose a family from; pass "
                             "spec=... (a built-in family name, a dict or a JSON file)");
  }
  return select_family(checkpoint.config(), checkpoint.path() + "/config.json");
}

// The rule's ops, in the documented order, on one instance's source tensors.
std::vector<Tensor> run_step(const Checkpoint& checkpoint, const PlanStep& step) {
  const SpecRule& rule = *step.rule;
  std::vector<Tensor> sources;
  for (const auto& name : step.sources) sources.push_back(checkpoint.tensor(name));
  Tensor t;
  switch (rule.combine) {
    case CombineOp::Concat: t = concat_tensors(sources, rule.combine_dim); break;
    case CombineOp::WeightNorm: t = weight_norm_fold(sources[0], sources[1], rule.combine_dim); break;
    case CombineOp::None: t = sources[0]; break;
  }
  if (!rule.transpose.empty()) t = permute_view(t, rule.transpose);
  if (!step.reshape.empty()) t = reshape_tensor(t, step.reshape);
  if (rule.squeeze) {
    Shape shape = t.shape();
    shape.erase(shape.begin() + (*rule.squeeze < 0 ? *rule.squeeze + t.ndim() : *rule.squeeze));
    t = reshape_tensor(t, shape);
  }
  if (rule.neg_exp) t = neg_exp(t);
  if (rule.split) return split_views(t, rule.split_dim, step.split_sizes);
  return {t};
}

// A tensor that is constant, or distributed as the config's initializer_range says a fresh
// nn.Linear / nn.Embedding would be, has probably never been trained.
std::string init_flag(const TensorStats& s, const nlohmann::json& config) {
  if (s.numel > 1 && s.finite == s.numel && s.min == s.max) {
    char value[32];
    std::snprintf(value, sizeof value, "%g", s.min);
    return std::string("constant ") + value;
  }
  if (s.numel >= 256 && config.contains("initializer_range") &&
      config["initializer_range"].is_number()) {
    const double r = config["initializer_range"].get<double>();
    if (r > 0 && std::fabs(s.std - r) <= 0.05 * r && std::fabs(s.mean) <= 0.05 * r) {
      char value[32];
      std::snprintf(value, sizeof value, "%g", r);
      return std::string("normal(0, initializer_range=") + value + ")";
    }
  }
  return "";
}

// What a load to a CUDA device checks before it opens or reads anything.
void check_load_device(const LoadOptions& options) {
  if (options.device.type != DeviceType::CUDA) return;
  validate_upload_options(options.upload);
  require_usable_device(options.device, "load");
}

// Every made tensor but the tied ones (which share their target's) goes up in one pass; the
// state then points at the device tensors, a tied name at its target's.
void upload_state(LoadResult& result, const std::map<std::string, std::string>& tied_to,
                  const std::map<std::string, DType>& wanted, const LoadOptions& options) {
  std::vector<UploadRequest> requests;
  for (const auto& [name, tensor] : result.state) {
    if (!tied_to.count(name)) requests.push_back(upload_request(name, tensor, wanted.at(name)));
  }
  UploadOptions upload = options.upload;
  upload.progress = options.progress;
  std::vector<Tensor> uploaded = upload_to_device(requests, options.device, upload);
  std::map<std::string, Tensor> on_device;
  for (size_t i = 0; i < requests.size(); ++i) on_device.emplace(requests[i].name, uploaded[i]);
  for (auto& [name, tensor] : result.state) {
    auto tied = tied_to.find(name);
    tensor = on_device.at(tied == tied_to.end() ? name : tied->second);
  }
}

// The plan of `checkpoint` through `spec` (or the family config.json selects), with the warning
// for a forced family that config.json contradicts.
LoadPlan plan_with_warnings(const Checkpoint& checkpoint, const FamilySpec* spec, HeadMode heads) {
  LoadPlan plan = plan_load(checkpoint, choose_spec(checkpoint, spec), heads);
  if (spec) {
    const std::string warning = family_mismatch_warning(*spec, checkpoint.config());
    if (!warning.empty()) plan.report.warnings.push_back(warning);
  }
  return plan;
}

}  // namespace

LoadReport map_checkpoint(const Checkpoint& checkpoint, const FamilySpec* spec, HeadMode heads) {
  return plan_with_warnings(checkpoint, spec, heads).report;
}

LoadResult load_checkpoint(const Checkpoint& checkpoint, const FamilySpec* spec,
                           const LoadOptions& options) {
  check_load_device(options);
  const bool on_device = options.device.type == DeviceType::CUDA;
  LoadPlan plan = plan_with_warnings(checkpoint, spec, options.heads);
  const bool heads_left = options.heads == HeadMode::Require && !plan.report.head_tensors.empty();
  if (options.strict && (!plan.report.ok() || heads_left)) {
    throw LoadError(plan.report.error_message());
  }

  LoadResult result;
  std::map<std::string, Tensor> made;
  std::map<std::string, DType> wanted;        // the dtype each made tensor ends in
  std::map<std::string, std::string> tied_to;  // a tied name -> the name it shares a tensor with
  uint64_t total = 0, done = 0;
  for (const auto& step : plan.steps) {
    if (!step.runnable) continue;
    for (const auto& source : step.sources) total += checkpoint.info(source).end - checkpoint.info(source).begin;
  }
  for (const auto& step : plan.steps) {
    if (!step.runnable) continue;
    std::vector<Tensor> tensors = run_step(checkpoint, step);
    for (size_t k = 0; k < tensors.size(); ++k) {
      Tensor t = tensors[k];
      const DType want =
          options.dtype && dtype_is_floating(t.dtype()) ? *options.dtype : t.dtype();
      // On a device the cast runs there after the upload (upload_state).
      if (!on_device) t = cast(t, want);
      ReportEntry& entry = plan.report.params[step.entries[k]];
      entry.dtype = std::string(dtype_name(want));
      made.emplace(entry.name, t);
      wanted.emplace(entry.name, want);
    }
    for (const auto& source : step.sources) done += checkpoint.info(source).end - checkpoint.info(source).begin;
    if (options.progress) options.progress(done, total);
  }
  for (const auto& entry : plan.report.params) {
    if (entry.status == ParamStatus::Tied) {
      if (auto it = made.find(entry.detail); it != made.end()) {
        made.emplace(entry.name, it->second);
        tied_to.emplace(entry.name, entry.detail);
      }
    }
  }
  for (auto& entry : plan.report.params) {
    auto it = made.find(entry.name);
    if (it == made.end()) continue;
    if (entry.status == ParamStatus::Tied) {
      entry.dtype = std::string(dtype_name(wanted.at(entry.detail)));
    }
    result.state.emplace_back(entry.name, it->second);
  }
  if (options.stats) {
    std::vector<Tensor> tensors;
    std::vector<size_t> owners;
    for (size_t i = 0; i < plan.report.params.size(); ++i) {
      auto it = made.find(plan.report.params[i].name);
      if (it == made.end()) continue;
      tensors.push_back(it->second);
      owners.push_back(i);
    }
    const std::vector<TensorStats> stats = tensor_stats_many(tensors);
    for (size_t k = 0; k < stats.size(); ++k) {
      ReportEntry& entry = plan.report.params[owners[k]];
      entry.stats = stats[k];
      if (entry.status == ParamStatus::Loaded) entry.init_flag = init_flag(stats[k], plan.config);
    }
  }
  if (on_device) upload_state(result, tied_to, wanted, options);
  result.report = std::move(plan.report);
  return result;
}

LoadResult load_checkpoint(const std::string& path, const FamilySpec* spec,
                           const LoadOptions& options) {
  check_load_device(options);
  const auto checkpoint = Checkpoint::open(path);
  return load_checkpoint(*checkpoint, spec, options);
}

}  // namespace hfport
