// Expanding a spec over config.json and matching it against a checkpoint. See load_plan.h.
#include "mapping/load_plan.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <variant>

#include "core/error.h"

namespace hfport {

namespace {

std::string substitute(const std::string& pattern, const Captures& captures) {
  std::string out;
  size_t pos = 0;
  while (pos < pattern.size()) {
    const size_t open = pattern.find('{', pos);
    if (open == std::string::npos) {
      out += pattern.substr(pos);
      break;
    }
    const size_t close = pattern.find('}', open);
    out += pattern.substr(pos, open - pos);
    out += std::to_string(captures.at(pattern.substr(open + 1, close - open - 1)));
    pos = close + 1;
  }
  return out;
}

std::vector<std::string> config_fields(const std::vector<Expression>& exprs, const Captures& captures) {
  std::set<std::string> fields;
  for (const auto& e : exprs) {
    for (const auto& f : e.fields()) {
      if (!captures.count(f)) fields.insert(f);
    }
  }
  return {fields.begin(), fields.end()};
}

std::string sizes_text(const std::vector<Expression>& exprs, const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < exprs.size(); ++i) {
    out += (i ? ", " : "") + exprs[i].text();
    if (exprs[i].text() != std::to_string(values[i])) out += "=" + std::to_string(values[i]);
  }
  return "[" + out + "]";
}

// The shapes the rule's ops make from the source shapes, one per target, or why they cannot.
std::variant<std::vector<Shape>, std::string> simulate(const SpecRule& rule, const PlanStep& step,
                                                      const std::vector<Shape>& in,
                                                      const std::vector<DType>& dtypes) {
  // Dtypes first, so a permissive load reports them instead of failing in the op.
  for (size_t k = 1; rule.combine == CombineOp::Concat && k < dtypes.size(); ++k) {
    if (dtypes[k] != dtypes[0]) {
      return "cannot concat " + step.sources[k] + " (" + std::string(dtype_name(dtypes[k])) +
             ") with " + step.sources[0] + " (" + std::string(dtype_name(dtypes[0])) + ")";
    }
  }
  if (rule.combine == CombineOp::WeightNorm || rule.neg_exp) {
    for (size_t k = 0; k < dtypes.size(); ++k) {
      if (!dtype_is_floating(dtypes[k])) {
        return std::string(rule.neg_exp ? "neg_exp" : "weight_norm") + " needs floating-point " +
               "tensors, " + step.sources[k] + " is " + std::string(dtype_name(dtypes[k]));
      }
    }
  }
  Shape shape;
  if (rule.combine == CombineOp::Concat) {
    shape = in[0];
    const int64_t nd = static_cast<int64_t>(shape.size());
    const int64_t dim = rule.combine_dim < 0 ? rule.combine_dim + nd : rule.combine_dim;
    if (dim < 0 || dim >= nd) return "concat dim " + std::to_string(rule.combine_dim) +
                                      " is outside " + shape_to_string(shape);
    shape[dim] = 0;
    for (size_t k = 0; k < in.size(); ++k) {
      bool fits = in[k].size() == in[0].size();
      for (int64_t d = 0; fits && d < nd; ++d) fits = d == dim || in[k][d] == in[0][d];
      if (!fits) {
        return "cannot concat along dim " + std::to_string(dim) + ": " + step.sources[k] + " is " +
               shape_to_string(in[k]) + " but " + step.sources[0] + " is " + shape_to_string(in[0]);
      }
      shape[dim] += in[k][dim];
    }
  } else if (rule.combine == CombineOp::WeightNorm) {
    const Shape& g = in[0];
    shape = in[1];
    const int64_t nd = static_cast<int64_t>(shape.size());
    const int64_t dim = rule.combine_dim < 0 ? rule.combine_dim + nd : rule.combine_dim;
    if (dim < 0 || dim >= nd) return "weight_norm dim " + std::to_string(rule.combine_dim) +
                                      " is outside v " + shape_to_string(shape);
    if (shape_numel(g) != shape[dim]) {
      return "weight_norm: g " + step.sources[0] + " is " + shape_to_string(g) + ", but v " +
             step.sources[1] + " " + shape_to_string(shape) + " needs " + std::to_string(shape[dim]) +
             " values along dim " + std::to_string(dim);
    }
  } else {
    shape = in[0];
  }
  if (!rule.transpose.empty()) {
    if (rule.transpose.size() != shape.size()) {
      return "transpose " + std::to_string(rule.transpose.size()) + " dims of " + shape_to_string(shape);
    }
    Shape permuted(shape.size());
    for (size_t d = 0; d < shape.size(); ++d) permuted[d] = shape[rule.transpose[d]];
    shape = permuted;
  }
  if (!step.reshape.empty()) {
    if (shape_numel(step.reshape) != shape_numel(shape)) {
      return "cannot reshape " + shape_to_string(shape) + " to " + shape_to_string(step.reshape);
    }
    shape = step.reshape;
  }
  if (rule.squeeze) {
    const int64_t nd = static_cast<int64_t>(shape.size());
    const int64_t dim = *rule.squeeze < 0 ? *rule.squeeze + nd : *rule.squeeze;
    if (dim < 0 || dim >= nd || shape[dim] != 1) {
      return "cannot squeeze dim " + std::to_string(*rule.squeeze) + " of " + shape_to_string(shape);
    }
    shape.erase(shape.begin() + dim);
  }
  if (!rule.split) return std::vector<Shape>{shape};
  const int64_t nd = static_cast<int64_t>(shape.size());
  const int64_t dim = rule.split_dim < 0 ? rule.split_dim + nd : rule.split_dim;
  if (dim < 0 || dim >= nd) return "split dim " + std::to_string(rule.split_dim) + " is outside " +
                                    shape_to_string(shape);
  int64_t total = 0;
  for (int64_t s : step.split_sizes) {
    if (s < 0) return "split size " + std::to_string(s) + " is negative";
    total += s;
  }
  if (total != shape[dim]) {
    return "split sizes " + sizes_text(rule.split_sizes, step.split_sizes) + " add up to " +
           std::to_string(total) + ", but the tensor is " + shape_to_string(shape) + ": " +
           std::to_string(shape[dim]) + " along dim " + std::to_string(dim);
  }
  std::vector<Shape> pieces;
  for (int64_t s : step.split_sizes) {
    Shape piece = shape;
    piece[dim] = s;
    pieces.push_back(piece);
  }
  return pieces;
}

// Why a prefixed checkpoint's tensors outside the base model were not loaded: its architecture
// names no head of the spec.
std::string unknown_head_note(const FamilySpec& spec, const nlohmann::json& config) {
  std::string architectures;
  for (const auto& a : config_architectures(config)) {
    architectures += (architectures.empty() ? "" : ", ") + a;
  }
  std::string known;
  for (const auto& head : spec.heads) {
    std::string archs;
    for (const auto& a : head.architectures) archs += (archs.empty() ? "" : ", ") + a;
    known += (known.empty() ? "" : "; ") + head.name + " (" + archs + ")";
  }
  return (architectures.empty() ? std::string("config.json names no architecture")
                                : "config.json's architecture " + architectures) +
         " has no head in family '" + spec.family + "' (its heads: " +
         (known.empty() ? std::string("none") : known) + "); the base model is loaded alone";
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative wildcard match with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

HeadMode head_mode_from_name(const std::string& name) {
  if (name == "auto") return HeadMode::Auto;
  if (name == "require") return HeadMode::Require;
  if (name == "none") return HeadMode::None;
  throw ArgumentError("heads must be \"auto\", \"require\" or \"none\", got '" + name + "'");
}

LoadPlan plan_load(const Checkpoint& checkpoint, const FamilySpec& spec, HeadMode heads) {
  LoadPlan plan;
  plan.spec = spec;
  plan.config = apply_config_defaults(plan.spec, checkpoint.config());
  check_requirements(plan.spec, plan.config);
  LoadReport& report = plan.report;
  report.path = checkpoint.path();
  report.family = plan.spec.family;
  report.source = plan.spec.source;
  std::map<std::string, std::string> consumed_as_tied;  // checkpoint name -> tied-to native
  std::set<std::string> consumed;
  std::map<std::string, std::string> switched_off;      // name a rule switched off would read -> why

  // A checkpoint saved from a task class (LlamaForCausalLM, BertForMaskedLM) has the base model's
  // names under the prefix; one saved from the base model (LlamaModel, BertModel) has them bare.
  // transformers decides the same way, by whether any name carries the prefix.
  const std::string& prefix = plan.spec.base_prefix;
  const bool prefixed =
      !prefix.empty() && std::any_of(checkpoint.names().begin(), checkpoint.names().end(),
                                     [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
  if (!prefix.empty() && !prefixed) {
    report.note = "saved from the base model: names without the '" + prefix + "' prefix";
  }
  auto base_name = [&](std::string name) {
    const bool has = !prefix.empty() && name.rfind(prefix, 0) == 0;
    if (prefixed && !has) return prefix + name;
    if (!prefixed && has) name.erase(0, prefix.size());
    return name;
  };

  const SpecHead* head = select_head(plan.spec, plan.config);
  if (head && heads == HeadMode::None) {
    report.head_note = "heads=\"none\": the base model alone (config.json's architecture carries the '" +
                       head->name + "' head)";
    head = nullptr;
  } else if (head) {
    report.head = head->name;
  }
  struct ActiveRule {
    const SpecRule* rule;
    bool base;
  };
  std::vector<ActiveRule> active;
  for (const SpecRule& rule : plan.spec.rules) active.push_back({&rule, true});
  if (head) for (const SpecRule& rule : head->rules) active.push_back({&rule, false});

  // "`use_swiglu_ffn` (config.json: use_swiglu_ffn = true)"
  auto condition_text = [&](const Expression& when) {
    std::string values;
    for (const auto& field : when.fields()) {
      values += (values.empty() ? "" : ", ") + field + " = " +
                (plan.config.contains(field) ? plan.config[field].dump() : std::string("(absent)"));
    }
    return "`" + when.text() + "` (config.json: " + values + ")";
  };

  for (const auto& [rule_ptr, in_base] : active) {
    const SpecRule& rule = *rule_ptr;
    auto source_name = [&, in_base = in_base](const std::string& pattern, const Captures& captures) {
      const std::string name = substitute(pattern, captures);
      return in_base ? base_name(name) : name;
    };
    std::function<void(size_t, Captures&)> expand = [&](size_t depth, Captures& captures) {
      if (depth < rule.captures.size()) {
        const std::string& name = rule.captures[depth];
        const Expression* range = nullptr;
        for (const auto& [capture, expr] : plan.spec.ranges) if (capture == name) range = &expr;
        const int64_t count = range->evaluate_int(plan.config, captures,
                                                  rule.where + " range {" + name + "}");
        // config.json is untrusted: a range cannot name more layers than a checkpoint could hold.
        constexpr int64_t kMaxRange = int64_t{1} << 20;
        if (count < 0 || count > kMaxRange) {
          throw ExpressionError(rule.where + " range {" + name + "}: '" + range->text() +
                                "' gives " + std::to_string(count) + ", outside [0, " +
                                std::to_string(kMaxRange) + "]");
        }
        for (int64_t value = 0; value < count; ++value) {
          captures[name] = value;
          expand(depth + 1, captures);
        }
        captures.erase(name);
        return;
      }
      if (!rule.when.empty() && !rule.when.evaluate_bool(plan.config, captures, rule.where + " when")) {
        for (const auto& pattern : rule.from) {
          switched_off.emplace(source_name(pattern, captures),
                               "read by the rule for " + substitute(rule.to[0].name, captures) +
                                   " only when " + condition_text(rule.when));
        }
        return;
      }
      PlanStep step;
      step.rule = &rule;
      step.captures = captures;
      for (const auto& pattern : rule.from) step.sources.push_back(source_name(pattern, captures));
      for (const auto& expr : rule.split_sizes) {
        step.split_sizes.push_back(expr.evaluate_int(plan.config, captures, rule.where + " split"));
      }
      for (const auto& expr : rule.reshape) {
        step.reshape.push_back(expr.evaluate_int(plan.config, captures, rule.where + " reshape"));
      }
      for (const auto& target : rule.to) {
        ReportEntry entry;
        entry.name = substitute(target.name, captures);
        entry.sources = step.sources;
        entry.ops = rule.op_names();
        for (const auto& dim : target.shape) {
          entry.expected.push_back(dim.evaluate_int(plan.config, captures, rule.where + " shape"));
        }
        entry.fields = config_fields(target.shape, captures);
        step.entries.push_back(report.params.size());
        report.params.push_back(std::move(entry));
      }
      if (!rule.tied_to.empty() &&
          rule.tied_when.evaluate_bool(plan.config, captures, rule.where + " tied_when")) {
        ReportEntry& entry = report.params[step.entries[0]];
        entry.status = ParamStatus::Tied;
        entry.detail = substitute(rule.tied_to, captures);
        entry.ops = {"tied"};
        for (const auto& source : step.sources) {
          if (checkpoint.contains(source)) consumed_as_tied.emplace(source, entry.detail);
        }
        plan.steps.push_back(std::move(step));
        return;
      }
      std::vector<std::string> missing;
      std::vector<Shape> shapes;
      std::vector<DType> dtypes;
      for (const auto& source : step.sources) {
        if (checkpoint.contains(source)) {
          consumed.insert(source);
          shapes.push_back(checkpoint.info(source).shape);
          dtypes.push_back(checkpoint.info(source).dtype);
        } else {
          missing.push_back(source);
        }
      }
      const bool all_absent = missing.size() == step.sources.size();
      for (size_t k = 0; k < step.entries.size(); ++k) {
        ReportEntry& entry = report.params[step.entries[k]];
        if (!missing.empty()) {
          entry.status = rule.optional && all_absent ? ParamStatus::Absent : ParamStatus::Missing;
          if (entry.status == ParamStatus::Missing) {
            entry.missing_sources = missing;
            if (!rule.when.empty()) entry.condition = condition_text(rule.when);
          }
        }
      }
      if (missing.empty()) {
        auto result = simulate(rule, step, shapes, dtypes);
        const DType dtype = checkpoint.info(step.sources.back()).dtype;
        for (size_t k = 0; k < step.entries.size(); ++k) {
          ReportEntry& entry = report.params[step.entries[k]];
          entry.dtype = std::string(dtype_name(dtype));
          if (auto* problem = std::get_if<std::string>(&result)) {
            entry.status = ParamStatus::Mismatched;
            entry.detail = *problem;
            continue;
          }
          entry.got = std::get<std::vector<Shape>>(result)[k];
          if (entry.got != entry.expected) {
            entry.status = ParamStatus::Mismatched;
            std::string fields;
            for (const auto& f : entry.fields) fields += (fields.empty() ? "" : ", ") + f;
            entry.detail = "expected " + shape_to_string(entry.expected) +
                           (fields.empty() ? "" : " (from " + fields + ")") + ", got " +
                           shape_to_string(entry.got);
          }
        }
        step.runnable = true;
        for (size_t index : step.entries) {
          step.runnable &= report.params[index].status == ParamStatus::Loaded;
        }
      }
      plan.steps.push_back(std::move(step));
    };
    Captures captures;
    expand(0, captures);
  }

  std::set<std::string> natives;
  for (const auto& entry : report.params) {
    if (!natives.insert(entry.name).second) {
      throw SpecError("spec '" + plan.spec.family + "': two rules make '" + entry.name +
                      "' for this config.json (their 'when' conditions overlap)");
    }
  }
  for (const auto& entry : report.params) {
    if (entry.status == ParamStatus::Tied && !natives.count(entry.detail)) {
      throw SpecError("spec '" + plan.spec.family + "': '" + entry.name + "' is tied to '" +
                      entry.detail + "', which no rule produces");
    }
  }
  for (const auto& name : checkpoint.names()) {
    if (consumed.count(name)) continue;
    if (auto it = consumed_as_tied.find(name); it != consumed_as_tied.end()) {
      report.ignored.emplace_back(name, "tied to " + it->second);
      continue;
    }
    const std::string* pattern = nullptr;
    for (const auto& p : plan.spec.ignore) {
      if (glob_match(base_name(p), name)) { pattern = &p; break; }
    }
    for (size_t k = 0; head && !pattern && k < head->ignore.size(); ++k) {
      if (glob_match(head->ignore[k], name)) pattern = &head->ignore[k];
    }
    if (pattern) {
      report.ignored.emplace_back(name, "ignore '" + *pattern + "'");
    } else if (prefixed && !head && name.rfind(prefix, 0) != 0) {
      // Outside the base model, and no head of the spec claims it: a task head's tensor.
      report.head_tensors.push_back(name);
    } else {
      report.unexpected.push_back(name);
      if (auto it = switched_off.find(name); it != switched_off.end()) {
        report.switched_off.emplace_back(name, it->second);
      }
    }
  }
  if (!report.head_tensors.empty() && report.head_note.empty()) {
    report.head_note = unknown_head_note(plan.spec, plan.config);
  }
  add_suggestions(report, checkpoint.names());
  return plan;
}

}  // namespace hfport
