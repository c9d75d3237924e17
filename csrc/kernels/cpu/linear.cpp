#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <string>

#include "core/cast.h"
#include "core/error.h"
#include "kernels/cpu/kernel_arguments.h"

namespace hfport {

namespace {

constexpr const char* kLinear = "linear";

struct LinearShapes {
  int64_t rows, in, out;
  Shape out_shape;
};

LinearShapes check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  require_float(kLinear, "x", x);
  if (x.ndim() < 1) {
    throw ArgumentError("linear: x must be [..., in] (at least 1 dimension), got " +
                shape_to_string(x.shape()));
  }
  const int64_t in = x.shape().back();
  require_float(kLinear, "weight", weight);
  require_ndim(kLinear, "weight", weight, 2, "[out, in]");
  const int64_t out = weight.shape()[0];
  require_shape(kLinear, "weight", weight, {out, in}, "[out, in]");
  require_same_dtype(kLinear, "weight", weight, "x", x);
  if (bias.defined()) {
    require_float(kLinear, "bias", bias);
    require_shape(kLinear, "bias", bias, {out}, "[out]");
  }
  LinearShapes s{in == 0 ? 0 : x.numel() / in, in, out, x.shape()};
  if (in == 0) {
    s.rows = 1;
    for (size_t i = 0; i + 1 < x.shape().size(); ++i) s.rows *= x.shape()[i];
  }
  s.out_shape.back() = out;
  return s;
}

}  // namespace

void linear_f32(const LinearParams& p) {
  if (p.m == 0 || p.n == 0) return;
  for (int64_t r = 0; r < p.m; ++r) {
    float* row = p.out + r * p.n;
    if (p.bias) {
      std::copy(p.bias, p.bias + p.n, row);
    } else {
      std::fill(row, row + p.n, 0.0f);
    }
  }
  if (p.k == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, p.weight_is_out_in ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(p.m), static_cast<blasint>(p.n), static_cast<blasint>(p.k), 1.0f,
              p.x, static_cast<blasint>(p.k), p.weight, static_cast<blasint>(p.weight_ld), 1.0f,
              p.out, static_cast<blasint>(p.n));
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  const LinearShapes s = check_linear(x, weight, bias);
  require_no_overlap(kLinear, out, x, "x");
  require_no_overlap(kLinear, out, weight, "weight");
  require_no_overlap(kLinear, out, bias, "bias");
  Tensor result = output_tensor(kLinear, out, x.dtype(), s.out_shape);
  const bool f32 = x.dtype() == DType::F32;
  const Tensor xc = f32 ? x.contiguous() : cast(x, DType::F32);
  // A weight sgemm can read in place: [out, in] rows (stride (ld >= in, 1)) or the transpose of
  // [in, out] rows (stride (1, ld >= out)). A dimension of size 1 has no meaningful stride.
  Tensor w = f32 ? weight : cast(weight, DType::F32);
  bool out_in = true;
  int64_t ld = s.in;
  const int64_t s0 = w.strides()[0], s1 = w.strides()[1];
  if (s.in > 1 && s.out > 1 && s1 == 1 && s0 >= s.in) {
    ld = s0;
  } else if (s.in > 1 && s.out > 1 && s0 == 1 && s1 >= s.out) {
    out_in = false;
    ld = s1;
  } else if (!w.is_contiguous()) {
    w = w.contiguous();
  }
  const Tensor b = bias.defined() ? as_f32_contiguous(bias) : Tensor();
  Tensor y = f32 ? result : Tensor::empty(DType::F32, s.out_shape);
  LinearParams p;
  p.m = s.rows;
  p.n = s.out;
  p.k = s.in;
  p.x = xc.data_as<float>();
  p.weight = w.data_as<float>();
  p.weight_ld = std::max<int64_t>(ld, 1);
  p.weight_is_out_in = out_in;
  p.bias = b.defined() ? b.data_as<float>() : nullptr;
  p.out = y.data_as<float>();
  linear_f32(p);
  if (!f32) cast_contiguous(y.data(), DType::F32, result.data(), x.dtype(), y.numel());
  return result;
}

Tensor linear_reference(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const LinearShapes s = check_linear(x, weight, bias);
  const Tensor xc = x.contiguous();
  Tensor result = Tensor::empty(DType::F64, s.out_shape);
  double* y = result.data_as<double>();
  const auto& ws = weight.strides();
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int64_t o = 0; o < s.out; ++o) {
      double acc = bias.defined() ? load_as_f64(bias.data(), bias.dtype(), o * bias.strides()[0]) : 0.0;
      for (int64_t i = 0; i < s.in; ++i) {
        acc += load_as_f64(xc.data(), xc.dtype(), r * s.in + i) *
               load_as_f64(weight.data(), weight.dtype(), o * ws[0] + i * ws[1]);
      }
      y[r * s.out + o] = acc;
    }
  }
  return result;
}

}  // namespace hfport
