// "Did you mean": the names closest to one that was not found. Used by the load report for a
// missing parameter and by Checkpoint for a tensor name that is not in the file.
//
// Closeness is edit distance, capped at max(3, len/3) of the wanted name so that unrelated names
// are never suggested, except that a name differing only by whole leading dot-separated parts
// (transformer.wte.weight vs wte.weight), the commonest real mismatch, counts as distance 0.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hfport {

// Levenshtein distance of a and b, or limit + 1 as soon as it must exceed `limit`.
size_t edit_distance(const std::string& a, const std::string& b, size_t limit);

// The largest name_distance a suggestion for `wanted` may have.
size_t suggestion_limit(const std::string& wanted);

// 0 for a prefix-only difference, else the edit distance (limit + 1 when beyond the limit).
size_t name_distance(const std::string& wanted, const std::string& candidate);

// Up to `count` of `names` within the limit, nearest first, ties in name order.
std::vector<std::string> closest_names(const std::string& wanted,
                                       const std::vector<std::string>& names, size_t count = 3);

}  // namespace hfport
