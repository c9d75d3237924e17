// See tensor_diff.h. Blocks of both tensors are converted to float64 and compared, so dtypes may
// differ (a bf16 conversion against its f32 source, say).
#include "core/tensor_diff.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cast.h"
#include "core/error.h"

namespace hfport {

TensorDifference tensor_difference(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) {
    throw Error("cannot compare tensors of shapes " + shape_to_string(a.shape()) + " and " +
                shape_to_string(b.shape()));
  }
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  TensorDifference d;
  d.numel = ca.numel();
  constexpr int64_t kBlock = 4096;
  std::vector<double> x(kBlock), y(kBlock);
  double diff_sq = 0.0, ref_sq = 0.0;
  const size_t sa = dtype_size(ca.dtype()), sb = dtype_size(cb.dtype());
  for (int64_t start = 0; start < d.numel; start += kBlock) {
    const int64_t n = std::min(kBlock, d.numel - start);
    cast_contiguous(ca.data() + start * sa, ca.dtype(), x.data(), DType::F64, n);
    cast_contiguous(cb.data() + start * sb, cb.dtype(), y.data(), DType::F64, n);
    for (int64_t i = 0; i < n; ++i) {
      const bool nan_x = std::isnan(x[i]), nan_y = std::isnan(y[i]);
      if (nan_x || nan_y) {
        if (nan_x != nan_y) { ++d.nan_mismatch; ++d.differing; }
        continue;
      }
      if (x[i] != y[i]) ++d.differing;
      if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
        if (x[i] != y[i]) ++d.inf_mismatch;
        continue;
      }
      const double diff = std::fabs(x[i] - y[i]);
      d.max_abs = std::max(d.max_abs, diff);
      if (y[i] != 0.0) d.max_rel = std::max(d.max_rel, diff / std::fabs(y[i]));
      diff_sq += diff * diff;
      ref_sq += y[i] * y[i];
    }
  }
  d.rel_l2 = ref_sq > 0 ? std::sqrt(diff_sq / ref_sq) : (diff_sq > 0 ? INFINITY : 0.0);
  if (d.inf_mismatch > 0) d.max_abs = d.rel_l2 = INFINITY;
  return d;
}

}  // namespace hfport
