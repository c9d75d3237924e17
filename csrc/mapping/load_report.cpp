// LoadReport rendering (text and JSON), layer-run folding and "did you mean" suggestions.
#include "mapping/load_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "core/name_suggestions.h"

namespace hfport {

std::string_view param_status_name(ParamStatus status) {
  switch (status) {
    case ParamStatus::Loaded: return "loaded";
    case ParamStatus::Tied: return "tied";
    case ParamStatus::Absent: return "absent";
    case ParamStatus::Missing: return "missing";
    case ParamStatus::Mismatched: return "mismatched";
  }
  return "?";
}

size_t LoadReport::count(ParamStatus status) const {
  return static_cast<size_t>(std::count_if(params.begin(), params.end(),
                                           [&](const ReportEntry& e) { return e.status == status; }));
}

bool LoadReport::ok() const {
  return count(ParamStatus::Missing) == 0 && count(ParamStatus::Mismatched) == 0 &&
         unexpected.empty();
}

namespace {

bool is_integer(const std::string& token) {
  return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
    return c >= '0' && c <= '9';
  }) && (token.size() == 1 || token[0] != '0');
}

std::vector<std::string> split_dots(const std::string& name) {
  std::vector<std::string> tokens;
  size_t start = 0;
  for (;;) {
    const size_t dot = name.find('.', start);
    tokens.push_back(name.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) return tokens;
    start = dot + 1;
  }
}

// {0..3,5,7..9}
std::string render_set(const std::set<int64_t>& values) {
  std::string out;
  auto it = values.begin();
  while (it != values.end()) {
    const int64_t first = *it;
    int64_t last = first;
    auto next = std::next(it);
    while (next != values.end() && *next == last + 1) last = *next++;
    if (!out.empty()) out += ",";
    out += std::to_string(first);
    if (last > first) out += (last == first + 1 ? "," : "..") + std::to_string(last);
    it = next;
  }
  return "{" + out + "}";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
  return out;
}

nlohmann::json stats_json(const TensorStats& s) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"numel", s.numel}, {"mean", num(s.mean)}, {"std", num(s.std)}, {"min", num(s.min)},
          {"max", num(s.max)}, {"nan", s.nan_count}, {"inf", s.inf_count}};
}

// The problem sections shared by to_text and error_message.
void write_problems(std::ostringstream& out, const LoadReport& report) {
  if (report.count(ParamStatus::Missing)) {
    out << "\nmissing (" << report.count(ParamStatus::Missing) << "):\n";
    for (const auto& e : report.params) {
      if (e.status != ParamStatus::Missing) continue;
      out << "  " << e.name << " <- not in the checkpoint: " << join(e.missing_sources, ", ") << "\n";
      if (!e.condition.empty()) out << "      its rule applies when " << e.condition << "\n";
      if (!e.suggestions.empty()) out << "      did you mean: " << join(e.suggestions, ", ") << "\n";
    }
  }
  if (report.count(ParamStatus::Mismatched)) {
    out << "\nmismatched (" << report.count(ParamStatus::Mismatched) << "):\n";
    for (const auto& e : report.params) {
      if (e.status != ParamStatus::Mismatched) continue;
      out << "  " << e.name << " <- " << join(e.sources, ", ") << ": " << e.detail << "\n";
    }
  }
  if (!report.unexpected.empty()) {
    out << "\nunexpected (" << report.unexpected.size() << ", in the checkpoint but in no rule):\n";
    for (const auto& name : fold_layer_runs(report.unexpected)) out << "  " << name << "\n";
    std::map<std::string, std::vector<std::string>> by_why;
    for (const auto& [name, why] : report.switched_off) by_why[why].push_back(name);
    for (const auto& [why, names] : by_why) {
      out << "  of these, " << join(fold_layer_runs(names), ", ") << ": " << why << "\n";
    }
  }
}

void write_head_tensors(std::ostringstream& out, const LoadReport& report) {
  if (report.head_tensors.empty()) return;
  out << "\nhead tensors not loaded (" << report.head_tensors.size() << "): " << report.head_note
      << "\n";
  for (const auto& name : fold_layer_runs(report.head_tensors)) out << "  " << name << "\n";
}

// The commonest prefix that turns missing source names into checkpoint names, or that the
// missing names carry and the checkpoint's lack ("bert." either way), when it explains most.
std::string find_prefix_hint(const LoadReport& report, const std::vector<std::string>& names) {
  std::vector<std::string> missing;
  for (const auto& e : report.params) {
    if (e.status == ParamStatus::Missing) missing.insert(missing.end(), e.missing_sources.begin(), e.missing_sources.end());
  }
  if (missing.empty()) return "";
  const std::set<std::string> have(names.begin(), names.end());
  std::map<std::string, size_t> under, without;  // prefix -> missing names it explains
  for (const auto& wanted : missing) {
    std::set<std::string> seen_under, seen_without;
    for (const auto& name : names) {
      if (name.size() > wanted.size() && name.compare(name.size() - wanted.size(), wanted.size(), wanted) == 0 &&
          name[name.size() - wanted.size() - 1] == '.') {
        seen_under.insert(name.substr(0, name.size() - wanted.size()));
      }
    }
    for (size_t dot = wanted.find('.'); dot != std::string::npos; dot = wanted.find('.', dot + 1)) {
      if (have.count(wanted.substr(dot + 1))) seen_without.insert(wanted.substr(0, dot + 1));
    }
    for (const auto& p : seen_under) ++under[p];
    for (const auto& p : seen_without) ++without[p];
  }
  std::string best;
  size_t count = 0;
  bool is_under = true;
  for (const auto& [p, n] : under) if (n > count) { best = p; count = n; is_under = true; }
  for (const auto& [p, n] : without) if (n > count) { best = p; count = n; is_under = false; }
  if (2 * count <= missing.size()) return "";
  const std::string share = std::to_string(count) + " of " + std::to_string(missing.size()) +
                            " missing names ";
  if (is_under) {
    return share + "are in the checkpoint under the prefix '" + best + "' (a spec reads them so " +
           "with \"base_prefix\": \"" + best + "\")";
  }
  return share + "are in the checkpoint without the prefix '" + best + "'";
}

}  // namespace

std::vector<std::string> fold_layer_runs(const std::vector<std::string>& names, bool linked) {
  struct Group {
    std::vector<std::string> tokens;  // the template: integer tokens replaced by ""
    std::vector<size_t> positions;    // where the integers are
    std::vector<std::vector<int64_t>> values;
    std::vector<std::string> members;
  };
  std::vector<Group> groups;
  std::map<std::string, size_t> by_key;
  for (const auto& name : names) {
    std::vector<std::string> tokens = split_dots(name);
    std::vector<size_t> positions;
    std::vector<int64_t> ints;
    std::string key;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (is_integer(tokens[i]) && tokens[i].size() < 18) {
        positions.push_back(i);
        ints.push_back(std::stoll(tokens[i]));
        tokens[i].clear();
        key += "\x01.";
      } else {
        key += tokens[i] + ".";
      }
    }
    auto [it, fresh] = by_key.emplace(key, groups.size());
    if (fresh) groups.push_back({tokens, positions, {}, {}});
    groups[it->second].values.push_back(ints);
    groups[it->second].members.push_back(name);
  }
  std::vector<std::string> out;
  for (const auto& g : groups) {
    if (g.members.size() == 1 || g.positions.empty()) {
      out.insert(out.end(), g.members.begin(), g.members.end());
      continue;
    }
    std::vector<std::set<int64_t>> sets(g.positions.size());
    for (const auto& ints : g.values) {
      for (size_t p = 0; p < ints.size(); ++p) sets[p].insert(ints[p]);
    }
    // Positions that always hold the same value (blk.3.x <- layers.3.y) are one dimension.
    std::vector<bool> follows(g.positions.size(), false);
    for (size_t q = 1; linked && q < g.positions.size(); ++q) {
      for (size_t p = 0; p < q && !follows[q]; ++p) {
        follows[q] = !follows[p] && std::all_of(g.values.begin(), g.values.end(),
                                                [&](const auto& ints) { return ints[p] == ints[q]; });
      }
    }
    double product = 1;
    for (size_t p = 0; p < sets.size(); ++p) {
      if (!follows[p]) product *= static_cast<double>(sets[p].size());
    }
    std::set<std::vector<int64_t>> distinct(g.values.begin(), g.values.end());
    if (product != static_cast<double>(distinct.size())) {
      // Not a full grid (blk.{0..1}.x.{0..2} with holes): list the names as they are.
      out.insert(out.end(), g.members.begin(), g.members.end());
      continue;
    }
    std::vector<std::string> tokens = g.tokens;
    for (size_t p = 0; p < g.positions.size(); ++p) {
      tokens[g.positions[p]] = sets[p].size() == 1 ? std::to_string(*sets[p].begin())
                                                   : render_set(sets[p]);
    }
    out.push_back(join(tokens, "."));
  }
  return out;
}

void add_suggestions(LoadReport& report, const std::vector<std::string>& checkpoint_names) {
  const std::set<std::string> unexpected(report.unexpected.begin(), report.unexpected.end());
  for (auto& entry : report.params) {
    if (entry.status != ParamStatus::Missing) continue;
    struct Candidate {
      size_t distance;
      bool not_unexpected;
      std::string name;
      bool operator<(const Candidate& o) const {
        return std::tie(distance, not_unexpected, name) < std::tie(o.distance, o.not_unexpected, o.name);
      }
    };
    std::set<Candidate> best;
    for (const auto& wanted : entry.missing_sources) {
      const size_t limit = suggestion_limit(wanted);
      for (const auto& name : checkpoint_names) {
        const size_t d = name_distance(wanted, name);
        if (d <= limit) best.insert({d, !unexpected.count(name), name});
      }
    }
    for (const auto& c : best) {
      if (entry.suggestions.size() == 3) break;
      // keep "did you mean" for names; the prefix hint says what a whole prefix explains
      if (std::find(entry.suggestions.begin(), entry.suggestions.end(), c.name) ==
          entry.suggestions.end()) {
        entry.suggestions.push_back(c.name);
      }
    }
  }
  report.prefix_hint = find_prefix_hint(report, checkpoint_names);
}

nlohmann::json LoadReport::to_json() const {
  nlohmann::json out;
  out["path"] = path;
  out["family"] = family;
  out["source"] = source;
  out["note"] = note;
  out["head"] = head;
  out["head_tensors"] = head_tensors;
  out["head_note"] = head_note;
  out["prefix_hint"] = prefix_hint;
  out["warnings"] = warnings;
  out["ok"] = ok();
  out["counts"] = {{"loaded", count(ParamStatus::Loaded)}, {"tied", count(ParamStatus::Tied)},
                   {"absent", count(ParamStatus::Absent)}, {"missing", count(ParamStatus::Missing)},
                   {"mismatched", count(ParamStatus::Mismatched)},
                   {"unexpected", unexpected.size()}, {"ignored", ignored.size()},
                   {"head_tensors", head_tensors.size()}};
  nlohmann::json params_json = nlohmann::json::array();
  for (const auto& e : params) {
    nlohmann::json j = {{"name", e.name},         {"status", param_status_name(e.status)},
                        {"sources", e.sources},   {"ops", e.ops},
                        {"expected", e.expected}, {"fields", e.fields}};
    if (e.status == ParamStatus::Loaded || e.status == ParamStatus::Mismatched) j["got"] = e.got;
    if (!e.dtype.empty()) j["dtype"] = e.dtype;
    if (!e.detail.empty()) j["detail"] = e.detail;
    if (e.status == ParamStatus::Missing) {
      if (!e.condition.empty()) j["condition"] = e.condition;
      j["missing_sources"] = e.missing_sources;
      j["suggestions"] = e.suggestions;
    }
    if (e.stats) j["stats"] = stats_json(*e.stats);
    if (!e.init_flag.empty()) j["init_flag"] = e.init_flag;
    params_json.push_back(std::move(j));
  }
  out["params"] = std::move(params_json);
  out["unexpected"] = unexpected;
  nlohmann::json switched = nlohmann::json::array();
  for (const auto& [name, why] : switched_off) switched.push_back({{"name", name}, {"why", why}});
  out["switched_off"] = std::move(switched);
  nlohmann::json ignored_json = nlohmann::json::array();
  for (const auto& [name, why] : ignored) ignored_json.push_back({{"name", name}, {"why", why}});
  out["ignored"] = std::move(ignored_json);
  return out;
}

std::string LoadReport::to_text() const {
  std::ostringstream out;
  for (const auto& warning : warnings) out << "warning: " << warning << "\n";
  out << "load report: " << path << "\n  family " << family;
  if (!source.empty()) out << " (" << source << ")";
  out << "\n  head: " << (head.empty() ? std::string("none (the base model)") : head);
  if (!note.empty()) out << "\n  " << note;
  out << "\n  " << count(ParamStatus::Loaded) << " loaded, " << count(ParamStatus::Tied) << " tied, "
      << count(ParamStatus::Absent) << " optional absent, " << count(ParamStatus::Missing)
      << " missing, " << count(ParamStatus::Mismatched) << " mismatched, " << unexpected.size()
      << " unexpected, " << ignored.size() << " ignored"
      << (head_tensors.empty() ? "" : ", " + std::to_string(head_tensors.size()) + " head tensors not loaded")
      << "\n";
  if (!prefix_hint.empty() && !ok()) out << "  " << prefix_hint << "\n";
  write_problems(out, *this);
  write_head_tensors(out, *this);

  // Loaded parameters, folded by (ops, shape, dtype, sources' template).
  std::map<std::string, std::vector<std::string>> rows;
  std::vector<std::string> order;
  for (const auto& e : params) {
    if (e.status != ParamStatus::Loaded && e.status != ParamStatus::Tied) continue;
    std::string key = join(e.ops, "+") + "\t" + shape_to_string(e.got) + "\t" + e.dtype;
    if (e.status == ParamStatus::Tied) key = "tied\t" + e.detail + "\t";
    if (!rows.count(key)) order.push_back(key);
    // Native and source names fold together: their layer numbers move in step.
    rows[key].push_back(e.status == ParamStatus::Tied ? e.name
                                                      : e.name + " <- " + join(e.sources, ", "));
  }
  if (!order.empty()) {
    struct Line {
      std::string name, what, from;
    };
    std::vector<Line> lines;
    size_t what_width = 0;
    size_t width = 0;
    for (const auto& key : order) {
      for (const auto& folded : fold_layer_runs(rows[key], /*linked=*/true)) {
        const size_t arrow = folded.find(" <- ");
        const std::string name = folded.substr(0, arrow);
        const std::string from = arrow == std::string::npos ? "" : folded.substr(arrow + 4);
        std::string what = key;
        for (char& c : what) if (c == '\t') c = ' ';
        lines.push_back({name, what, from});
        width = std::max(width, name.size());
        what_width = std::max(what_width, what.size());
      }
    }
    std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
      return a.name < b.name;
    });
    out << "\nloaded:\n";
    for (const auto& [name, what, from] : lines) {
      out << "  " << name << std::string(width - name.size() + 2, ' ') << what;
      if (!from.empty()) out << std::string(what_width - what.size() + 2, ' ') << "<- " << from;
      out << "\n";
    }
  }
  if (count(ParamStatus::Absent)) {
    std::vector<std::string> absent;
    for (const auto& e : params) if (e.status == ParamStatus::Absent) absent.push_back(e.name);
    out << "\noptional, absent from the checkpoint:\n";
    for (const auto& name : fold_layer_runs(absent)) out << "  " << name << "\n";
  }
  if (!ignored.empty()) {
    std::map<std::string, std::vector<std::string>> by_why;
    for (const auto& [name, why] : ignored) by_why[why].push_back(name);
    out << "\nignored:\n";
    for (const auto& [why, names] : by_why) {
      for (const auto& name : fold_layer_runs(names)) out << "  " << name << "  (" << why << ")\n";
    }
  }
  std::map<std::string, std::vector<std::string>> flagged;
  for (const auto& e : params) if (!e.init_flag.empty()) flagged[e.init_flag].push_back(e.name);
  if (!flagged.empty()) {
    out << "\nlook freshly initialised (check these were trained):\n";
    for (const auto& [flag, names] : flagged) {
      for (const auto& name : fold_layer_runs(names)) out << "  " << name << "  (" << flag << ")\n";
    }
  }
  return out.str();
}

std::string LoadReport::error_message() const {
  std::ostringstream out;
  out << "strict load of " << path << " as family '" << family << "' failed: "
      << count(ParamStatus::Missing) << " missing, " << count(ParamStatus::Mismatched)
      << " mismatched, " << unexpected.size() << " unexpected";
  if (!head_tensors.empty()) out << ", " << head_tensors.size() << " head tensors not loaded";
  if (!prefix_hint.empty()) out << ": " << prefix_hint;
  out << "\n";
  for (const auto& warning : warnings) out << "warning: " << warning << "\n";
  write_problems(out, *this);
  write_head_tensors(out, *this);
  out << "\n(hfport.load(path, strict=False) returns this report without raising; nothing is ever "
         "filled in.)";
  return out.str();
}

}  // namespace hfport
