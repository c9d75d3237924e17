#include "core/name_suggestions.h"

#include <algorithm>
#include <set>
#include <utility>

namespace hfport {

size_t edit_distance(const std::string& a, const std::string& b, size_t limit) {
  const size_t n = a.size(), m = b.size();
  if ((n > m ? n - m : m - n) > limit) return limit + 1;
  std::vector<size_t> row(m + 1), next(m + 1);
  for (size_t j = 0; j <= m; ++j) row[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    next[0] = i;
    size_t best = next[0];
    for (size_t j = 1; j <= m; ++j) {
      next[j] = std::min({row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      best = std::min(best, next[j]);
    }
    if (best > limit) return limit + 1;
    std::swap(row, next);
  }
  return row[m];
}

size_t suggestion_limit(const std::string& wanted) {
  return std::max<size_t>(3, wanted.size() / 3);
}

namespace {

// `longer` is `shorter` with whole leading components: "x." + shorter, "x.y." + shorter, ...
bool ends_with_component(const std::string& longer, const std::string& shorter) {
  return longer.size() > shorter.size() &&
         longer.compare(longer.size() - shorter.size(), shorter.size(), shorter) == 0 &&
         longer[longer.size() - shorter.size() - 1] == '.';
}

}  // namespace

size_t name_distance(const std::string& wanted, const std::string& candidate) {
  if (ends_with_component(wanted, candidate) || ends_with_component(candidate, wanted)) return 0;
  return edit_distance(wanted, candidate, suggestion_limit(wanted));
}

std::vector<std::string> closest_names(const std::string& wanted,
                                       const std::vector<std::string>& names, size_t count) {
  const size_t limit = suggestion_limit(wanted);
  std::set<std::pair<size_t, std::string>> best;
  for (const auto& name : names) {
    const size_t d = name_distance(wanted, name);
    if (d <= limit) best.emplace(d, name);
  }
  std::vector<std::string> out;
  for (const auto& [distance, name] : best) {
    if (out.size() == count) break;
    out.push_back(name);
  }
  return out;
}

}  // namespace hfport
