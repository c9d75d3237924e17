// The tensor ops a family spec names (docs/families.md), on host tensors.
//
// Views (permute, reshape of a contiguous tensor, split pieces) share the source's storage, so a
// renamed, transposed or split parameter still points into the mapped checkpoint. concat copies;
// weight_norm_fold and neg_exp compute in float64 and round once to the source dtype, so the
// result is the correctly rounded value of the exact formula. Callers have checked shapes (the
// load plan does it against config.json); these functions check again and throw hfport::Error.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace hfport {

Tensor concat_tensors(const std::vector<Tensor>& parts, int64_t dim);
// w = g * v / ||v||, the norm over every dim of v except `dim`; g holds v.shape[dim] values.
Tensor weight_norm_fold(const Tensor& g, const Tensor& v, int64_t dim);
Tensor neg_exp(const Tensor& a_log);
Tensor permute_view(const Tensor& t, const std::vector<int64_t>& perm);
// A view when `t` is contiguous, else a contiguous copy reshaped.
Tensor reshape_tensor(const Tensor& t, const Shape& shape);
std::vector<Tensor> split_views(const Tensor& t, int64_t dim, const std::vector<int64_t>& sizes);

}  // namespace hfport
