// linear on CUDA tensors: the checks it shares with the CPU op, the operands made contiguous on the
// device, and the epilogue placement around the cuBLASLt GEMM of kernels/cuda/gemm_cublaslt.h
// (ops/cuda/linear.h explains the layout and the choices).
#include "ops/cuda/linear.h"

#ifdef HFPORT_WITH_CUBLASLT

#include <cstdint>

#include "core/cuda/convert.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/gemm_simple.h"
#include "ops/cuda/device_tensor.h"
#include "ops/tensor_arguments.h"

namespace hfport::cuda {

namespace {

constexpr const char* kLinear = "linear";

GemmEpilogue fused_epilogue(bool bias, LinearActivation activation) {
  if (activation == LinearActivation::GeluTanh) {
    return bias ? GemmEpilogue::GeluBias : GemmEpilogue::Gelu;
  }
  return bias ? GemmEpilogue::Bias : GemmEpilogue::None;
}

bool aligned_for_epilogue(const void* bias) {
  return reinterpret_cast<uintptr_t>(bias) % kGemmBiasAlignment == 0;
}

// y = act(y) in place (kernels/cuda/activation.h: F32 math, one rounding to y's dtype).
void activation_in_place(const Tensor& y, LinearActivation act, void* stream) {
  ActivationParams p;
  p.activation = act == LinearActivation::Gelu ? Activation::GeluErf : Activation::GeluTanh;
  p.n = y.numel();
  p.dtype = y.dtype();
  p.x = y.data();
  p.out = y.data();
  activation(p, stream);
}

// y [rows, out] = bias broadcast over the rows, converted to y's dtype (a bias of any float dtype
// and stride), or zeros without a bias.
void fill_with_bias(const Tensor& y, const Tensor& bias, int64_t rows, int64_t out, void* stream) {
  if (!bias.defined()) {
    zero_fill(y);  // on op_stream(), which is `stream`
    return;
  }
  ConvertParams p;
  p.ndim = 2;
  p.sizes[0] = rows;
  p.sizes[1] = out;
  p.src_strides[0] = 0;
  p.src_strides[1] = bias.strides()[0];
  p.src_dtype = bias.dtype();
  p.src = bias.data();
  p.dst_dtype = y.dtype();
  p.dst = y.data();
  convert(p, stream);
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
              const LinearOptions& options, EpiloguePlacement placement) {
  const LinearShapes s = check_linear(x, weight, bias, out);
  const Device device = x.device();
  CurrentDevice current(device);
  const DType dtype = x.dtype();
  Tensor result = output_on(kLinear, out, dtype, s.out_shape, device);
  if (s.rows == 0 || s.out == 0) return result;
  void* stream = op_stream();
  const LinearActivation act = options.activation;

  if (s.in > 0) {
    const Tensor xc = contiguous_as(kLinear, "x", x, dtype);
    LinearWeightLayout layout = linear_weight_layout(weight);
    const Tensor w = layout.in_place ? weight : contiguous_as(kLinear, "weight", weight, dtype);
    if (!layout.in_place) layout = {true, s.in, true};

    // y^T [out, rows] = W [out, in] . x^T [in, rows] in cuBLASLt's column-major terms.
    CublasLtGemmParams p;
    p.device = device.index;
    p.m = s.out;
    p.n = s.rows;
    p.k = s.in;
    p.lda = layout.ld;
    p.ldb = s.in;
    p.ldd = s.out;
    p.transpose_a = layout.out_in;
    p.dtype = dtype;
    p.tf32 = dtype == DType::F32 && options.allow_tf32;
    p.a = w.data();
    p.b = xc.data();
    p.d = result.data();

    if (placement == EpiloguePlacement::Fused) {
      Tensor bc = bias.defined() ? contiguous_as(kLinear, "bias", bias, dtype) : Tensor();
      if (bc.defined() && !aligned_for_epilogue(bc.data())) {
        Tensor aligned = Tensor::empty(dtype, bc.shape(), device);  // cudaMalloc: 256-aligned
        copy_into(kLinear, bc, aligned);
        bc = aligned;
      }
      CublasLtGemmParams fused = p;
      fused.epilogue = fused_epilogue(bias.defined(), act);
      fused.bias = bias.defined() ? bc.data() : nullptr;
      if (gemm_cublaslt(fused, stream)) {
        if (act == LinearActivation::Gelu) activation_in_place(result, act, stream);
        return result;
      }
      // No algorithm with this epilogue: the separate placement below.
    }
    if (bias.defined()) fill_with_bias(result, bias, s.rows, s.out, stream);
    p.accumulate = bias.defined();
    if (!gemm_cublaslt(p, stream)) {
      // No algorithm at all (a dimension of 1, operands cuBLASLt cannot align): the plain GEMM,
      // slow and always available, rather than refusing what the CPU op takes.
      SimpleGemmParams g;
      g.rows = s.rows;
      g.in = s.in;
      g.out = s.out;
      g.dtype = dtype;
      g.x = xc.data();
      g.weight = w.data();
      g.w_out_stride = layout.out_in ? layout.ld : 1;
      g.w_in_stride = layout.out_in ? 1 : layout.ld;
      g.y = result.data();
      g.accumulate = bias.defined();
      gemm_simple(g, stream);
    }
  } else {
    fill_with_bias(result, bias, s.rows, s.out, stream);  // an empty sum: y = act(bias)
  }
  if (act != LinearActivation::None) activation_in_place(result, act, stream);
  return result;
}

}  // namespace hfport::cuda

#endif  // HFPORT_WITH_CUBLASLT
