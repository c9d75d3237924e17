// Reading and validating family specs; the built-in registry. See family_spec.h.
#include "mapping/family_spec.h"

#include <algorithm>
#include <map>
#include <functional>
#include <mutex>
#include <set>
#include <string_view>

#include "core/error.h"

namespace hfport {

// Defined in the file CMake generates from csrc/mapping/families/*.json.
const std::vector<std::pair<std::string_view, std::string_view>>& builtin_family_sources();

using ojson = nlohmann::ordered_json;

namespace {

[[noreturn]] void spec_fail(const std::string& where, const std::string& why) {
  throw SpecError(where + ": " + why);
}

void check_fields(const ojson& object, const std::set<std::string>& allowed,
                  const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& name : allowed) list += (list.empty() ? "" : ", ") + name;
      spec_fail(where, "unknown field '" + key + "' (known: " + list + ")");
    }
  }
}

std::string get_string(const ojson& object, const char* key, const std::string& where) {
  const ojson& value = object.at(key);
  if (!value.is_string()) spec_fail(where, std::string("'") + key + "' must be a string");
  return value.get<std::string>();
}

int64_t get_int(const ojson& value, const std::string& what, const std::string& where) {
  if (!value.is_number_integer()) spec_fail(where, "'" + what + "' must be an integer");
  return value.get<int64_t>();
}

std::vector<std::string> get_strings(const ojson& value, const std::string& what,
                                     const std::string& where) {
  std::vector<std::string> out;
  if (value.is_string()) return {value.get<std::string>()};
  if (!value.is_array()) spec_fail(where, "'" + what + "' must be a string or a list of strings");
  for (const auto& item : value) {
    if (!item.is_string()) spec_fail(where, "'" + what + "' must hold only strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

// An expression may be written as a JSON number, boolean or string.
Expression get_expression(const ojson& value, const std::string& where) {
  if (value.is_string()) return Expression::parse(value.get<std::string>(), where);
  if (value.is_number_integer() || value.is_boolean()) return Expression::parse(value.dump(), where);
  spec_fail(where, "expected an expression (a string or an integer), got " + value.dump());
}

std::vector<Expression> get_shape(const ojson& value, const std::string& where) {
  if (!value.is_array()) spec_fail(where, "'shape' must be a list of expressions");
  std::vector<Expression> shape;
  for (const auto& dim : value) shape.push_back(get_expression(dim, where));
  return shape;
}

// The {capture} names in a pattern; SpecError for an unclosed brace or an empty name.
std::vector<std::string> pattern_captures(const std::string& pattern, const std::string& where) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = pattern.find('{', pos)) != std::string::npos) {
    const size_t close = pattern.find('}', pos);
    if (close == std::string::npos || close == pos + 1) {
      spec_fail(where, "bad capture in pattern '" + pattern + "'");
    }
    names.push_back(pattern.substr(pos + 1, close - pos - 1));
    pos = close + 1;
  }
  return names;
}

SpecRule parse_rule(const ojson& doc, size_t index, const FamilySpec& spec,
                    const std::string& origin) {
  SpecRule rule;
  std::string label = doc.is_object() && doc.contains("to") && doc["to"].is_string()
                          ? doc["to"].get<std::string>()
                          : "#" + std::to_string(index);
  rule.where = origin + ", rule " + std::to_string(index) + " (" + label + ")";
  const std::string& where = rule.where;
  if (!doc.is_object()) spec_fail(where, "a rule must be a JSON object");
  check_fields(doc, {"to", "from", "shape", "concat", "weight_norm", "transpose", "reshape",
                     "squeeze", "neg_exp", "split", "optional", "when", "tied_to", "tied_when",
                     "comment"},
               where);
  if (!doc.contains("to")) spec_fail(where, "a rule needs 'to'");
  if (!doc.contains("from")) spec_fail(where, "a rule needs 'from'");
  rule.from = get_strings(doc["from"], "from", where);
  if (rule.from.empty()) spec_fail(where, "'from' is empty");

  if (doc.contains("concat") && doc.contains("weight_norm")) {
    spec_fail(where, "'concat' and 'weight_norm' cannot be combined in one rule");
  }
  if (doc.contains("concat")) {
    rule.combine = CombineOp::Concat;
    rule.combine_dim = get_int(doc["concat"], "concat", where);
    if (rule.from.size() < 2) spec_fail(where, "'concat' needs at least two 'from' names");
  } else if (doc.contains("weight_norm")) {
    rule.combine = CombineOp::WeightNorm;
    rule.combine_dim = get_int(doc["weight_norm"], "weight_norm", where);
    if (rule.from.size() != 2) {
      spec_fail(where, "'weight_norm' needs 'from' = [g, v] (two names), got " +
                           std::to_string(rule.from.size()));
    }
  } else if (rule.from.size() != 1) {
    spec_fail(where, "several 'from' names need 'concat' or 'weight_norm' to combine them");
  }
  if (doc.contains("transpose")) {
    const ojson& perm = doc["transpose"];
    if (!perm.is_array() || perm.empty()) spec_fail(where, "'transpose' must be a permutation list");
    std::vector<bool> seen(perm.size(), false);
    for (const auto& d : perm) {
      const int64_t dim = get_int(d, "transpose", where);
      if (dim < 0 || dim >= static_cast<int64_t>(perm.size()) || seen[dim]) {
        spec_fail(where, "'transpose' " + perm.dump() + " is not a permutation");
      }
      seen[dim] = true;
      rule.transpose.push_back(dim);
    }
  }
  if (doc.contains("reshape") && doc.contains("squeeze")) {
    spec_fail(where, "'reshape' and 'squeeze' cannot be combined in one rule");
  }
  if (doc.contains("reshape")) rule.reshape = get_shape(doc["reshape"], where);
  if (doc.contains("squeeze")) rule.squeeze = get_int(doc["squeeze"], "squeeze", where);
  if (doc.contains("neg_exp")) {
    if (!doc["neg_exp"].is_boolean()) spec_fail(where, "'neg_exp' must be true or false");
    rule.neg_exp = doc["neg_exp"].get<bool>();
  }
  if (doc.contains("optional")) {
    if (!doc["optional"].is_boolean()) spec_fail(where, "'optional' must be true or false");
    rule.optional = doc["optional"].get<bool>();
  }
  if (doc.contains("when")) rule.when = get_expression(doc["when"], where);
  if (doc.contains("tied_to") != doc.contains("tied_when")) {
    spec_fail(where, "'tied_to' and 'tied_when' go together");
  }
  if (doc.contains("tied_to")) {
    rule.tied_to = get_string(doc, "tied_to", where);
    rule.tied_when = get_expression(doc["tied_when"], where);
  }

  if (doc.contains("split")) {
    const ojson& split = doc["split"];
    if (!split.is_object()) spec_fail(where, "'split' must be {\"dim\": d, \"sizes\": [...]}");
    check_fields(split, {"dim", "sizes"}, where + " split");
    if (!split.contains("sizes") || !split["sizes"].is_array() || split["sizes"].size() < 2) {
      spec_fail(where, "'split' needs 'sizes', a list of at least two expressions");
    }
    rule.split = true;
    rule.split_dim = split.contains("dim") ? get_int(split["dim"], "split.dim", where) : 0;
    for (const auto& size : split["sizes"]) rule.split_sizes.push_back(get_expression(size, where));
    if (!doc["to"].is_array()) spec_fail(where, "a 'split' rule's 'to' is a list of {name, shape}");
    if (doc.contains("shape")) spec_fail(where, "a 'split' rule gives each piece its own 'shape'");
    for (const auto& piece : doc["to"]) {
      if (!piece.is_object()) spec_fail(where, "each 'to' piece of a split is {name, shape}");
      check_fields(piece, {"name", "shape"}, where);
      if (!piece.contains("name") || !piece.contains("shape")) {
        spec_fail(where, "each 'to' piece of a split needs 'name' and 'shape'");
      }
      rule.to.push_back({get_string(piece, "name", where), get_shape(piece["shape"], where)});
    }
    if (rule.to.size() != rule.split_sizes.size()) {
      spec_fail(where, "'split' has " + std::to_string(rule.split_sizes.size()) +
                           " sizes but 'to' names " + std::to_string(rule.to.size()) + " pieces");
    }
    if (!rule.tied_to.empty()) spec_fail(where, "a split rule cannot be tied");
  } else {
    if (!doc["to"].is_string()) spec_fail(where, "'to' must be a native name (a list only for split)");
    if (!doc.contains("shape")) spec_fail(where, "a rule needs the expected 'shape'");
    rule.to.push_back({doc["to"].get<std::string>(), get_shape(doc["shape"], where)});
  }

  // Captures: every {name} must be a declared range; `to` and `from` must use the same set, or
  // a name would be expanded differently on the two sides.
  std::set<std::string> to_captures, from_captures;
  for (const auto& target : rule.to) {
    for (auto& c : pattern_captures(target.name, where)) to_captures.insert(c);
  }
  for (const auto& pattern : rule.from) {
    for (auto& c : pattern_captures(pattern, where)) from_captures.insert(c);
  }
  if (!rule.tied_to.empty()) {
    for (auto& c : pattern_captures(rule.tied_to, where)) {
      if (!to_captures.count(c)) spec_fail(where, "'tied_to' uses {" + c + "}, which 'to' lacks");
    }
  }
  if (to_captures != from_captures) {
    spec_fail(where, "'to' and 'from' must use the same captures");
  }
  for (const auto& [name, expr] : spec.ranges) {
    if (to_captures.erase(name)) rule.captures.push_back(name);
  }
  if (!to_captures.empty()) {
    spec_fail(where, "capture {" + *to_captures.begin() + "} has no entry in 'ranges'");
  }
  return rule;
}

// "heads": {name: {"architectures": [...], "params": [...], "ignore": [...]}}. An architecture
// carries one head at most.
std::vector<SpecHead> parse_heads(const ojson& doc, const FamilySpec& spec, const std::string& origin) {
  if (!doc.is_object()) spec_fail(origin, "'heads' must be an object {head name: {architectures, params}}");
  std::vector<SpecHead> heads;
  std::map<std::string, std::string> owner;  // architecture -> head
  for (const auto& [name, body] : doc.items()) {
    const std::string where = origin + " head '" + name + "'";
    if (!body.is_object()) spec_fail(where, "a head must be an object {architectures, params}");
    check_fields(body, {"architectures", "params", "ignore", "comment"}, where);
    SpecHead head;
    head.name = name;
    if (!body.contains("architectures")) spec_fail(where, "a head needs 'architectures'");
    head.architectures = get_strings(body["architectures"], "architectures", where);
    if (head.architectures.empty()) spec_fail(where, "'architectures' is empty");
    for (const auto& arch : head.architectures) {
      auto [it, fresh] = owner.emplace(arch, name);
      if (!fresh) spec_fail(where, "architecture '" + arch + "' is already head '" + it->second + "''s");
    }
    if (!body.contains("params") || !body["params"].is_array()) {
      spec_fail(where, "a head needs 'params', a list of rules");
    }
    size_t index = 0;
    for (const auto& rule : body["params"]) head.rules.push_back(parse_rule(rule, index++, spec, where));
    if (body.contains("ignore")) head.ignore = get_strings(body["ignore"], "ignore", where);
    heads.push_back(std::move(head));
  }
  return heads;
}

using BaseLookup = std::function<const FamilySpec&(const std::string&)>;

// A spec with `extends`: the base's document, overridden field by field. Rules replace the base
// rule with the same first `to` name, or are appended.
ojson resolve_extends(const ojson& doc, const std::string& origin, const BaseLookup& base) {
  if (!doc.contains("extends")) return doc;
  if (!doc["extends"].is_string()) spec_fail(origin, "'extends' must name a built-in family");
  ojson merged;
  try {
    merged = base(doc["extends"].get<std::string>()).document;
  } catch (const SpecError& e) {
    throw SpecError(origin + ": extends: " + e.what());
  }
  for (const char* key : {"config_defaults", "ranges"}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_object()) spec_fail(origin, std::string("'") + key + "' must be an object");
    for (const auto& [k, v] : doc[key].items()) merged[key][k] = v;
  }
  if (doc.contains("ignore")) {
    for (const auto& pattern : get_strings(doc["ignore"], "ignore", origin)) {
      merged["ignore"].push_back(pattern);
    }
  }
  if (doc.contains("params")) {
    if (!doc["params"].is_array()) spec_fail(origin, "'params' must be a list of rules");
    auto first_to = [](const ojson& rule) -> std::string {
      if (!rule.is_object() || !rule.contains("to")) return "";
      const ojson& to = rule["to"];
      if (to.is_string()) return to.get<std::string>();
      if (to.is_array() && !to.empty() && to[0].is_object() && to[0].contains("name")) {
        return to[0]["name"].dump();
      }
      return "";
    };
    for (const auto& rule : doc["params"]) {
      bool replaced = false;
      for (auto& base_rule : merged["params"]) {
        if (!first_to(rule).empty() && first_to(base_rule) == first_to(rule)) {
          base_rule = rule;
          replaced = true;
          break;
        }
      }
      if (!replaced) merged["params"].push_back(rule);
    }
  }
  for (const char* key : {"family", "source", "match", "comment"}) {
    if (doc.contains(key)) merged[key] = doc[key];
    else merged.erase(key);
  }
  // Heads, the default head and the requirements are replaced whole: an extending family's task
  // classes are its own (RobertaForMaskedLM is not BertForMaskedLM).
  for (const char* key : {"base_prefix", "heads", "default_head", "requires"}) {
    if (doc.contains(key)) merged[key] = doc[key];
  }
  if (!merged.contains("source")) {
    merged["source"] = "extends " + doc["extends"].get<std::string>();
  }
  return merged;
}

}  // namespace

std::vector<std::string> SpecRule::op_names() const {
  std::vector<std::string> ops;
  if (combine == CombineOp::Concat) ops.push_back("concat");
  if (combine == CombineOp::WeightNorm) ops.push_back("weight_norm");
  if (!transpose.empty()) ops.push_back("transpose");
  if (!reshape.empty()) ops.push_back("reshape");
  if (squeeze) ops.push_back("squeeze");
  if (neg_exp) ops.push_back("neg_exp");
  if (split) ops.push_back("split");
  if (ops.empty()) ops.push_back("rename");
  return ops;
}

FamilySpec parse_family_spec_text(const std::string& json_text, const std::string& origin) {
  ojson document;
  try {
    document = ojson::parse(json_text);
  } catch (const ojson::exception& e) {  // a syntax error, or a number out of range (1e500)
    throw SpecError(origin + ": not valid JSON: " + e.what());
  }
  return parse_family_spec(document, origin);
}

namespace {

FamilySpec parse_with_base(const ojson& input, const std::string& origin, const BaseLookup& base) {
  if (!input.is_object()) spec_fail(origin, "a spec must be a JSON object");
  check_fields(input, {"family", "source", "match", "extends", "config_defaults", "ranges",
                       "params", "ignore", "base_prefix", "heads", "default_head", "requires",
                       "comment"},
               origin);
  const ojson doc = resolve_extends(input, origin, base);
  FamilySpec spec;
  spec.document = doc;
  if (!doc.contains("family")) spec_fail(origin, "a spec needs 'family' (its name)");
  spec.family = get_string(doc, "family", origin);
  if (doc.contains("source")) spec.source = get_string(doc, "source", origin);
  if (doc.contains("base_prefix")) spec.base_prefix = get_string(doc, "base_prefix", origin);
  if (doc.contains("match")) {
    const ojson& match = doc["match"];
    if (!match.is_object()) spec_fail(origin, "'match' must be an object");
    check_fields(match, {"model_type", "architectures"}, origin + " match");
    if (match.contains("model_type")) {
      spec.match_model_types = get_strings(match["model_type"], "match.model_type", origin);
    }
    if (match.contains("architectures")) {
      spec.match_architectures = get_strings(match["architectures"], "match.architectures", origin);
    }
  }
  for (const char* key : {"config_defaults", "ranges"}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_object()) spec_fail(origin, std::string("'") + key + "' must be an object");
    auto& target = std::string(key) == "ranges" ? spec.ranges : spec.config_defaults;
    for (const auto& [name, value] : doc[key].items()) {
      const std::string where = origin + " " + key + "." + name;
      if (&target == &spec.config_defaults && value.is_object()) {
        // {"if_absent": expr}: a null in config.json is kept (transformers' None), not replaced.
        if (value.size() != 1 || !value.contains("if_absent")) {
          spec_fail(origin, "config_defaults." + name + " must be an expression or "
                    "{\"if_absent\": expression}");
        }
        target.emplace_back(name, get_expression(value["if_absent"], where));
        spec.defaults_keeping_null.insert(name);
        continue;
      }
      target.emplace_back(name, get_expression(value, where));
    }
  }
  if (!doc.contains("params") || !doc["params"].is_array()) {
    spec_fail(origin, "a spec needs 'params', a list of rules");
  }
  size_t index = 0;
  for (const auto& rule : doc["params"]) spec.rules.push_back(parse_rule(rule, index++, spec, origin));
  if (doc.contains("ignore")) spec.ignore = get_strings(doc["ignore"], "ignore", origin);
  if (doc.contains("heads")) spec.heads = parse_heads(doc["heads"], spec, origin);
  if (doc.contains("default_head")) {
    spec.default_head = get_string(doc, "default_head", origin);
    const bool known = std::any_of(spec.heads.begin(), spec.heads.end(),
                                   [&](const SpecHead& h) { return h.name == spec.default_head; });
    if (!known) spec_fail(origin, "'default_head' names '" + spec.default_head + "', which is not in 'heads'");
  }
  if (doc.contains("requires")) {
    for (const auto& text : get_strings(doc["requires"], "requires", origin)) {
      const std::string where = origin + " requires '" + text + "'";
      spec.requirements.push_back({Expression::parse(text, where), where});
    }
  }

  // Two rules may make one native name only when `when` decides between them (DINOv2's SwiGLU
  // and plain MLP variants); the plan checks that no config selects both.
  std::map<std::string, bool> unconditional;
  for (const auto& rule : spec.rules) {
    for (const auto& target : rule.to) {
      auto [it, fresh] = unconditional.emplace(target.name, rule.when.empty());
      if (!fresh && (it->second || rule.when.empty())) {
        spec_fail(rule.where, "native name '" + target.name + "' is produced by two rules "
                              "(allowed only when both have a 'when')");
      }
    }
  }
  return spec;
}

}  // namespace

FamilySpec parse_family_spec(const ojson& input, const std::string& origin) {
  return parse_with_base(input, origin, [](const std::string& name) -> const FamilySpec& {
    return builtin_family(name);
  });
}

namespace {

struct Registry {
  std::map<std::string, FamilySpec> specs;
  std::map<std::string, std::string> texts;
};

const Registry& registry() {
  static const Registry* instance = [] {
    auto* reg = new Registry;
    for (const auto& [name, text] : builtin_family_sources()) {
      reg->texts.emplace(std::string(name), std::string(text));
    }
    // Parse in dependency order: a spec may extend another built-in one.
    std::set<std::string> pending;
    for (const auto& [name, text] : reg->texts) pending.insert(name);
    while (!pending.empty()) {
      const std::string name = *pending.begin();
      std::function<void(const std::string&)> parse_one = [&](const std::string& n) {
        if (!pending.count(n)) return;
        pending.erase(n);
        const ojson doc = ojson::parse(reg->texts.at(n));
        // A built-in base is parsed first and read from this registry under construction:
        // going through builtin_family() here would wait on our own static initialisation.
        const BaseLookup base = [&](const std::string& base_name) -> const FamilySpec& {
          if (!reg->texts.count(base_name)) {
            throw SpecError("built-in family '" + n + "' extends '" + base_name +
                            "', which is not a built-in family");
          }
          parse_one(base_name);
          return reg->specs.at(base_name);
        };
        reg->specs[n] = parse_with_base(doc, "built-in family '" + n + "'", base);
      };
      parse_one(name);
    }
    return reg;
  }();
  return *instance;
}

}  // namespace

std::vector<std::string> builtin_family_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : builtin_family_sources()) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const FamilySpec& builtin_family(const std::string& name) {
  const auto& specs = registry().specs;
  auto it = specs.find(name);
  if (it == specs.end() || it->second.family.empty()) {
    std::string list;
    for (const auto& n : builtin_family_names()) list += (list.empty() ? "" : ", ") + n;
    throw SpecError("no built-in family '" + name + "' (built-in: " + list + ")");
  }
  return it->second;
}

std::string builtin_family_json(const std::string& name) {
  return builtin_family(name).document.dump(2);
}

namespace {

std::string config_model_type(const nlohmann::json& config) {
  return config.is_object() && config.contains("model_type") && config["model_type"].is_string()
             ? config["model_type"].get<std::string>() : "";
}

}  // namespace

std::vector<std::string> config_architectures(const nlohmann::json& config) {
  std::vector<std::string> architectures;
  if (config.is_object() && config.contains("architectures") && config["architectures"].is_array()) {
    for (const auto& a : config["architectures"]) {
      if (a.is_string()) architectures.push_back(a.get<std::string>());
    }
  }
  return architectures;
}

const FamilySpec& select_family(const nlohmann::json& config, const std::string& config_origin) {
  const std::string model_type = config_model_type(config);
  const std::vector<std::string> architectures = config_architectures(config);
  const FamilySpec* by_type = nullptr;
  const FamilySpec* by_architecture = nullptr;
  for (const auto& name : builtin_family_names()) {
    const FamilySpec& spec = builtin_family(name);
    const auto& types = spec.match_model_types;
    if (!model_type.empty() && std::find(types.begin(), types.end(), model_type) != types.end()) {
      if (by_type) {
        throw SpecError("built-in families '" + by_type->family + "' and '" + spec.family +
                        "' both match model_type '" + model_type + "'");
      }
      by_type = &spec;
    }
    for (const auto& arch : architectures) {
      const auto& archs = spec.match_architectures;
      if (!by_architecture && std::find(archs.begin(), archs.end(), arch) != archs.end()) {
        by_architecture = &spec;
      }
    }
  }
  if (by_type) return *by_type;
  if (by_architecture) return *by_architecture;
  std::string known;
  for (const auto& name : builtin_family_names()) {
    const FamilySpec& spec = builtin_family(name);
    if (spec.match_model_types.empty() && spec.match_architectures.empty()) continue;
    known += "\n  " + name + ": model_type";
    for (const auto& t : spec.match_model_types) known += " '" + t + "'";
  }
  std::string archs;
  for (const auto& a : architectures) archs += (archs.empty() ? "" : ", ") + a;
  throw UnknownFamilyError(
      config_origin + ": no built-in family for model_type '" + model_type + "' (architectures: " +
      (archs.empty() ? "none" : archs) + "); pass spec=... (a family name, a dict or a JSON file)." +
      " Known families:" + known);
}

const SpecHead* select_head(const FamilySpec& spec, const nlohmann::json& config) {
  const std::vector<std::string> architectures = config_architectures(config);
  for (const auto& arch : architectures) {
    for (const auto& head : spec.heads) {
      if (std::find(head.architectures.begin(), head.architectures.end(), arch) !=
          head.architectures.end()) {
        return &head;
      }
    }
  }
  if (architectures.empty() && !spec.default_head.empty()) {
    for (const auto& head : spec.heads) if (head.name == spec.default_head) return &head;
  }
  return nullptr;
}

std::string family_mismatch_warning(const FamilySpec& spec, const nlohmann::json& config) {
  if (spec.match_model_types.empty() && spec.match_architectures.empty()) return "";
  const std::string model_type = config_model_type(config);
  const std::vector<std::string> architectures = config_architectures(config);
  if (model_type.empty() && architectures.empty()) return "";
  auto listed = [](const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
  };
  if (!model_type.empty() && listed(spec.match_model_types, model_type)) return "";
  for (const auto& arch : architectures) {
    if (listed(spec.match_architectures, arch)) return "";
  }
  auto quoted = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "'" : ", '") + item + "'";
    return out.empty() ? std::string("none") : out;
  };
  std::string says = model_type.empty() ? "no model_type" : "model_type '" + model_type + "'";
  says += " (architectures " + quoted(architectures) + ")";
  return "family '" + spec.family + "' was forced, but config.json says " + says + ", which '" +
         spec.family + "' does not match (it matches model_type " + quoted(spec.match_model_types) +
         ", architectures " + quoted(spec.match_architectures) + ")";
}

void check_requirements(const FamilySpec& spec, const nlohmann::json& config) {
  for (const auto& requirement : spec.requirements) {
    if (requirement.condition.evaluate_bool(config, {}, requirement.where)) continue;
    std::string values;
    for (const auto& field : requirement.condition.fields()) {
      values += (values.empty() ? "" : ", ") + field + " = " +
                (config.contains(field) ? config[field].dump() : std::string("(absent)"));
    }
    throw ConfigError("family '" + spec.family + "' covers only configs where " +
                      requirement.condition.text() + "; config.json has " + values);
  }
}

nlohmann::json apply_config_defaults(const FamilySpec& spec, const nlohmann::json& config) {
  nlohmann::json out = config.is_object() ? config : nlohmann::json::object();
  if ((!out.contains("num_labels") || out["num_labels"].is_null()) && out.contains("id2label") &&
      out["id2label"].is_object()) {
    out["num_labels"] = out["id2label"].size();
  }
  for (const auto& [field, expr] : spec.config_defaults) {
    const bool keep_null = spec.defaults_keeping_null.count(field) > 0;
    const bool absent = !out.contains(field) || (out[field].is_null() && !keep_null) ||
                        (!keep_null && out[field].is_string() &&
                         out[field].get<std::string>() == "auto");
    if (absent) {
      out[field] = expr.evaluate(out, {}, spec.family + " config_defaults." + field);
    }
  }
  return out;
}

}  // namespace hfport
