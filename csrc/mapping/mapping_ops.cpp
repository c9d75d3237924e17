// Host implementations of the spec ops. See mapping_ops.h.
#include "mapping/mapping_ops.h"

#include <cmath>
#include <cstring>

#include "core/cast.h"
#include "core/error.h"
#include "core/parallel.h"

namespace hfport {

namespace {

constexpr int64_t kCopyGrainBytes = int64_t{1} << 20;

void require_host(const Tensor& t, const char* op) {
  if (t.device().type != DeviceType::CPU) {
    throw DeviceError(std::string(op) + " runs on the host; a tensor is on CUDA");
  }
}

// memcpy of large blocks on several threads.
void parallel_copy(std::byte* dst, const std::byte* src, size_t bytes) {
  const int64_t chunks = static_cast<int64_t>((bytes + kCopyGrainBytes - 1) / kCopyGrainBytes);
  parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
    const size_t from = static_cast<size_t>(begin) * kCopyGrainBytes;
    const size_t to = std::min(bytes, static_cast<size_t>(end) * kCopyGrainBytes);
    std::memcpy(dst + from, src + from, to - from);
  });
}

std::vector<double> to_f64(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<double> out(static_cast<size_t>(c.numel()));
  cast_contiguous(c.data(), c.dtype(), out.data(), DType::F64, c.numel());
  return out;
}

Tensor from_f64(const std::vector<double>& values, DType dtype, const Shape& shape) {
  Tensor out = Tensor::empty(dtype, shape);
  cast_contiguous(values.data(), DType::F64, out.data(), dtype, out.numel());
  return out;
}

int64_t normalise_dim(int64_t dim, int64_t ndim, const char* op) {
  if (dim < -ndim || dim >= ndim) {
    throw SliceError(std::string(op) + ": dim " + std::to_string(dim) + " is outside a " +
                     std::to_string(ndim) + "-dim tensor");
  }
  return dim < 0 ? dim + ndim : dim;
}

}  // namespace

Tensor concat_tensors(const std::vector<Tensor>& parts, int64_t dim) {
  if (parts.empty()) throw Error("concat: no tensors");
  const Tensor& first = parts.front();
  dim = normalise_dim(dim, first.ndim(), "concat");
  Shape shape = first.shape();
  shape[dim] = 0;
  for (const auto& p : parts) {
    require_host(p, "concat");
    bool same = p.ndim() == first.ndim() && p.dtype() == first.dtype();
    for (int64_t d = 0; same && d < p.ndim(); ++d) same = d == dim || p.shape()[d] == first.shape()[d];
    if (!same) {
      throw LoadError("concat along dim " + std::to_string(dim) + ": " + shape_to_string(p.shape()) +
                       " " + std::string(dtype_name(p.dtype())) + " does not fit " +
                       shape_to_string(first.shape()) + " " + std::string(dtype_name(first.dtype())));
    }
    shape[dim] += p.shape()[dim];
  }
  Tensor out = Tensor::empty(first.dtype(), shape);
  int64_t outer = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  const size_t out_row = out.nbytes() / static_cast<size_t>(std::max<int64_t>(outer, 1));
  size_t offset = 0;
  for (const auto& p : parts) {
    const Tensor src = p.contiguous();
    const size_t row = src.nbytes() / static_cast<size_t>(std::max<int64_t>(outer, 1));
    if (outer == 1) {
      parallel_copy(out.data() + offset, src.data(), row);
    } else {
      const std::byte* from = src.data();
      std::byte* to = out.data() + offset;
      parallel_for(outer, std::max<int64_t>(1, kCopyGrainBytes / std::max<size_t>(row, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t o = begin; o < end; ++o) {
                       std::memcpy(to + o * out_row, from + o * row, row);
                     }
                   });
    }
    offset += row;
  }
  return out;
}

Tensor weight_norm_fold(const Tensor& g, const Tensor& v, int64_t dim) {
  require_host(g, "weight_norm");
  require_host(v, "weight_norm");
  dim = normalise_dim(dim, v.ndim(), "weight_norm");
  const int64_t n = v.shape()[dim];
  if (g.numel() != n) {
    throw LoadError("weight_norm: g " + shape_to_string(g.shape()) + " should hold " +
                     std::to_string(n) + " values (v " + shape_to_string(v.shape()) + " along dim " +
                     std::to_string(dim) + ")");
  }
  if (!dtype_is_floating(v.dtype()) || !dtype_is_floating(g.dtype())) {
    throw DTypeConversionError("weight_norm needs floating-point g and v");
  }
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= v.shape()[d];
  for (int64_t d = dim + 1; d < v.ndim(); ++d) inner *= v.shape()[d];
  const std::vector<double> gv = to_f64(g);
  std::vector<double> vv = to_f64(v);
  std::vector<double> sumsq(static_cast<size_t>(n), 0.0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      const double* row = vv.data() + (o * n + k) * inner;
      double s = 0.0;
      for (int64_t i = 0; i < inner; ++i) s += row[i] * row[i];
      sumsq[k] += s;
    }
  }
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      const double scale = gv[k] / std::sqrt(sumsq[k]);
      double* row = vv.data() + (o * n + k) * inner;
      for (int64_t i = 0; i < inner; ++i) row[i] *= scale;
    }
  }
  return from_f64(vv, v.dtype(), v.shape());
}

Tensor neg_exp(const Tensor& a_log) {
  require_host(a_log, "neg_exp");
  if (!dtype_is_floating(a_log.dtype())) throw DTypeConversionError("neg_exp needs a float tensor");
  std::vector<double> values = to_f64(a_log);
  for (double& x : values) x = -std::exp(x);
  return from_f64(values, a_log.dtype(), a_log.shape());
}

Tensor permute_view(const Tensor& t, const std::vector<int64_t>& perm) {
  if (static_cast<int64_t>(perm.size()) != t.ndim()) {
    throw LoadError("transpose " + std::to_string(perm.size()) + " dims of a " +
                     std::to_string(t.ndim()) + "-dim tensor " + shape_to_string(t.shape()));
  }
  Shape shape(perm.size()), strides(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) {
    shape[d] = t.shape()[perm[d]];
    strides[d] = t.strides()[perm[d]];
  }
  return Tensor(t.storage(), t.byte_offset(), t.dtype(), shape, strides);
}

Tensor reshape_tensor(const Tensor& t, const Shape& shape) {
  return t.contiguous().view(shape);
}

std::vector<Tensor> split_views(const Tensor& t, int64_t dim, const std::vector<int64_t>& sizes) {
  dim = normalise_dim(dim, t.ndim(), "split");
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t size : sizes) {
    pieces.push_back(t.slice(dim, start, start + size));
    start += size;
  }
  if (start != t.shape()[dim]) {
    throw LoadError("split sizes add up to " + std::to_string(start) + ", the tensor has " +
                     std::to_string(t.shape()[dim]) + " along dim " + std::to_string(dim));
  }
  return pieces;
}

}  // namespace hfport
