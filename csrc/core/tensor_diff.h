// Element-wise comparison of two tensors of the same shape (any float or integer dtypes), in
// float64: the figures `hfport diff` prints and parity checks use.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace hfport {

struct TensorDifference {
  int64_t numel = 0;
  int64_t differing = 0;      // elements that are not equal (NaN == NaN counts as equal)
  int64_t nan_mismatch = 0;   // NaN in one and not the other
  int64_t inf_mismatch = 0;   // an infinity on one side that the other does not have
  double max_abs = 0.0;       // max |a - b| over finite pairs; inf when inf_mismatch > 0
  double max_rel = 0.0;       // max |a - b| / |b| over finite pairs with b != 0
  double rel_l2 = 0.0;        // ||a - b|| / ||b|| (0 when both are zero)
};

// Throws hfport::Error when the shapes differ.
TensorDifference tensor_difference(const Tensor& a, const Tensor& b);

}  // namespace hfport
