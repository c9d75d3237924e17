// linear on CUDA tensors: the checks it shares with the CPU op, the GEMM problem in cuBLASLt's
// column-major terms, the per-device handle / workspace / algorithm cache, and the epilogue
// placement (kernels/cuda/linear.h explains the layout, precision and choices).
#include "kernels/cuda/linear.h"

#ifdef HFPORT_WITH_CUBLASLT

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "core/device.h"
#include "core/error.h"
#include "kernels/cpu/kernel_arguments.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_tensor.h"
#include "kernels/cuda/gemm_simple.h"

namespace hfport::cuda {

namespace {

constexpr const char* kLinear = "linear";
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// The bias alignment the epilogue may assume. The heuristic's alignment preferences cover A, B, C
// and D but not the bias pointer, so a chosen algorithm may read the bias in 16-byte vectors and
// fault ("misaligned address", which ends the CUDA context) on a bias view that starts off that.
constexpr uint32_t kBiasAlignment = 16;

// CudaError naming the cuBLASLt call and its status, by name and by cuBLASLt's description.
void check(cublasStatus_t status, const std::string& call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw CudaError(call + " failed: " + cublasLtGetStatusName(status) + " (" +
                  cublasLtGetStatusString(status) + ")");
}

template <typename T>
void set_attribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                   const char* name, const T& value) {
  check(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)),
        std::string("cublasLtMatmulDescSetAttribute(") + name + ")");
}

template <typename T>
void set_attribute(cublasLtMatmulPreference_t preference,
                   cublasLtMatmulPreferenceAttributes_t attribute, const char* name,
                   const T& value) {
  check(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, sizeof(value)),
        std::string("cublasLtMatmulPreferenceSetAttribute(") + name + ")");
}

cudaDataType_t cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

// The largest power of two, up to 256, that divides the address: the alignment the heuristic may
// assume for an operand (its default assumption is 256).
uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 1;
  while (alignment < 256 && address % (2 * alignment) == 0) alignment *= 2;
  return alignment;
}

// One GEMM as the heuristic sees it, in column-major terms: D [m, n] = op(A) [m, k] . B [k, n] with
// m = out, n = rows, k = in (linear.h). Everything the chosen algorithm depends on is here; the
// device is the cache's own.
struct Problem {
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;
  bool transpose_a = true;  // A stored [k, m] (weight as [out, in] rows); false: stored [m, k]
  DType dtype = DType::F32;
  bool tf32 = false;
  int epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  uint32_t align_a = 0, align_b = 0, align_d = 0, align_bias = 0;  // bytes; bias 0: no bias

  auto operator<=>(const Problem&) const = default;
};

const char* epilogue_name(int epilogue) {
  switch (epilogue) {
    case CUBLASLT_EPILOGUE_BIAS: return "BIAS";
    case CUBLASLT_EPILOGUE_GELU: return "GELU";
    case CUBLASLT_EPILOGUE_GELU_BIAS: return "GELU_BIAS";
    default: return "DEFAULT";
  }
}

// In the user's terms, for errors.
std::string describe(const Problem& p) {
  return "y [rows, out] = x [rows, in] @ weight^T with rows=" + std::to_string(p.n) +
         ", in=" + std::to_string(p.k) + ", out=" + std::to_string(p.m) + ", " +
         std::string(dtype_name(p.dtype)) + (p.tf32 ? " (TF32)" : "") + ", weight " +
         (p.transpose_a ? "[out, in]" : "[in, out]^T") + " rows " + std::to_string(p.lda) +
         " apart, epilogue " + epilogue_name(p.epilogue) + ", byte alignment of x " +
         std::to_string(p.align_b) + ", weight " + std::to_string(p.align_a) + ", y " +
         std::to_string(p.align_d) + (p.align_bias ? ", bias " + std::to_string(p.align_bias) : "");
}

// The descriptors of one problem, in stack storage (cuBLASLt's *Init calls: nothing to destroy).
// Not copyable: cuBLASLt is handed their addresses.
struct Descriptors {
  cublasLtMatmulDescOpaque_t op;
  cublasLtMatrixLayoutOpaque_t a, b, d;

  Descriptors(const Problem& p, const void* bias) {
    const cublasComputeType_t compute = p.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    check(cublasLtMatmulDescInit(&op, compute, CUDA_R_32F), "cublasLtMatmulDescInit");
    const cublasOperation_t trans_a = p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t trans_b = CUBLAS_OP_N;
    set_attribute(&op, CUBLASLT_MATMUL_DESC_TRANSA, "TRANSA", trans_a);
    set_attribute(&op, CUBLASLT_MATMUL_DESC_TRANSB, "TRANSB", trans_b);
    const auto epilogue = static_cast<cublasLtEpilogue_t>(p.epilogue);
    set_attribute(&op, CUBLASLT_MATMUL_DESC_EPILOGUE, "EPILOGUE", epilogue);
    // The bias is in the output's dtype, cuBLASLt's default for BIAS_DATA_TYPE.
    if (bias != nullptr) set_attribute(&op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, "BIAS_POINTER", bias);
    const cudaDataType_t type = cuda_data_type(p.dtype);
    const auto rows_a = static_cast<uint64_t>(p.transpose_a ? p.k : p.m);
    const auto cols_a = static_cast<uint64_t>(p.transpose_a ? p.m : p.k);
    check(cublasLtMatrixLayoutInit(&a, type, rows_a, cols_a, p.lda), "cublasLtMatrixLayoutInit(A)");
    check(cublasLtMatrixLayoutInit(&b, type, static_cast<uint64_t>(p.k), static_cast<uint64_t>(p.n),
                                   p.ldb),
          "cublasLtMatrixLayoutInit(B)");
    check(cublasLtMatrixLayoutInit(&d, type, static_cast<uint64_t>(p.m), static_cast<uint64_t>(p.n),
                                   p.ldd),
          "cublasLtMatrixLayoutInit(D)");
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

// The heuristic's first choice for a problem, or none (with the status it gave).
struct Algorithm {
  bool found = false;
  cublasLtMatmulAlgo_t algo{};
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
};

// One device's cuBLASLt state: the handle, the workspace every GEMM on the device shares (they
// all run in order on its work stream), and the algorithm of each problem seen so far.
class LtDevice {
 public:
  // With device `index` current.
  explicit LtDevice(int index) {
    check(cublasLtCreate(&handle_), "cublasLtCreate");
    const cudaError_t status = cudaMalloc(&workspace_, kWorkspaceBytes);
    if (status != cudaSuccess) {
      cudaGetLastError();  // an allocation failure is not sticky; leave no error behind
      cublasLtDestroy(handle_);
      throw CudaError("linear: cudaMalloc of cuBLASLt's " + std::to_string(kWorkspaceBytes >> 20) +
                      " MiB workspace on cuda:" + std::to_string(index) +
                      " failed: " + cudaGetErrorString(status));
    }
  }
  LtDevice(const LtDevice&) = delete;
  LtDevice& operator=(const LtDevice&) = delete;

  cublasLtHandle_t handle() const { return handle_; }
  void* workspace() const { return workspace_; }

  // The cached algorithm of `problem`, or `query()`'s answer, cached, when there is none yet (an
  // answer of "none" is cached too, so a refused problem is not asked about again).
  template <typename Query>
  Algorithm algorithm(const Problem& problem, Query&& query) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = algorithms_.find(problem);
    if (found == algorithms_.end()) {
      ++heuristic_queries_;
      found = algorithms_.emplace(problem, query()).first;
    }
    return found->second;
  }

  LinearAlgorithmCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {heuristic_queries_, static_cast<int64_t>(algorithms_.size())};
  }

 private:
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::mutex mutex_;
  std::map<Problem, Algorithm> algorithms_;
  int64_t heuristic_queries_ = 0;
};

// The LtDevice of each device index, made on first use. They are function-local statics, private
// to this file, because a handle, a workspace and the heuristic's answers are worth keeping for as
// long as the process uses the GPU (per call they would cost a cudaMalloc and a heuristic query
// each time) and hfport has no context object a caller could own them through. They are never
// destroyed: static destructors may run after the CUDA runtime has torn its contexts down (the
// order across libraries is unspecified), when cudaFree and cublasLtDestroy fail or crash; the
// end of the process frees both.
std::mutex& lt_devices_mutex() {
  static std::mutex* mutex = new std::mutex();
  return *mutex;
}

std::map<int, LtDevice*>& lt_devices() {
  static auto* devices = new std::map<int, LtDevice*>();
  return *devices;
}

LtDevice& lt_device(int index) {
  std::lock_guard<std::mutex> lock(lt_devices_mutex());
  LtDevice*& slot = lt_devices()[index];
  if (slot == nullptr) slot = new LtDevice(index);
  return *slot;
}

Algorithm ask_heuristic(const LtDevice& device, const Problem& p, Descriptors& desc) {
  cublasLtMatmulPreferenceOpaque_t preference;
  check(cublasLtMatmulPreferenceInit(&preference), "cublasLtMatmulPreferenceInit");
  set_attribute(&preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, "MAX_WORKSPACE_BYTES",
                uint64_t{kWorkspaceBytes});
  set_attribute(&preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, "MIN_ALIGNMENT_A_BYTES",
                p.align_a);
  set_attribute(&preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, "MIN_ALIGNMENT_B_BYTES",
                p.align_b);
  set_attribute(&preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, "MIN_ALIGNMENT_C_BYTES",
                p.align_d);
  set_attribute(&preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, "MIN_ALIGNMENT_D_BYTES",
                p.align_d);
  // Split-K partial sums, where an algorithm splits K, are kept in F32 in the workspace and reduced
  // in a fixed order: the in-place and output-type schemes would round them to a 16-bit output
  // type between slices, and the in-place one also sums in an order that varies run to run.
  // Algorithms that do not split K (scheme NONE) pass any mask.
  set_attribute(&preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, "REDUCTION_SCHEME_MASK",
                static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE));
  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  Algorithm algorithm;
  algorithm.status = cublasLtMatmulAlgoGetHeuristic(device.handle(), &desc.op, &desc.a, &desc.b,
                                                    &desc.d, &desc.d, &preference, 1, &result,
                                                    &count);
  // NOT_SUPPORTED and INVALID_VALUE are cuBLASLt's "no algorithm for this problem" (the latter for
  // some shapes with a dimension of 1); any other failure is an error.
  if (algorithm.status != CUBLAS_STATUS_NOT_SUPPORTED &&
      algorithm.status != CUBLAS_STATUS_INVALID_VALUE) {
    check(algorithm.status, "cublasLtMatmulAlgoGetHeuristic (" + describe(p) + ")");
  }
  if (algorithm.status == CUBLAS_STATUS_SUCCESS && count > 0) {
    if (result.state == CUBLAS_STATUS_SUCCESS) {
      algorithm.found = true;
      algorithm.algo = result.algo;
    } else {
      algorithm.status = result.state;
    }
  } else if (algorithm.status == CUBLAS_STATUS_SUCCESS) {
    algorithm.status = CUBLAS_STATUS_NOT_SUPPORTED;  // success with no result: nothing fits
  }
  return algorithm;
}

// The device pointers of one GEMM.
struct Operands {
  const void* weight = nullptr;  // A
  const void* x = nullptr;       // B
  void* y = nullptr;             // C and D
  const void* bias = nullptr;    // for the BIAS epilogues
};

// Runs the GEMM when cuBLASLt has an algorithm for it; `accumulate` adds onto y (beta = 1).
// Returns the heuristic's status when it has none.
cublasStatus_t try_gemm(LtDevice& device, const Problem& p, const Operands& ops, bool accumulate,
                        void* stream) {
  Descriptors desc(p, p.align_bias != 0 ? ops.bias : nullptr);
  const Algorithm algorithm =
      device.algorithm(p, [&] { return ask_heuristic(device, p, desc); });
  if (!algorithm.found) return algorithm.status;
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  check(cublasLtMatmul(device.handle(), &desc.op, &alpha, ops.weight, &desc.a, ops.x, &desc.b,
                       &beta, ops.y, &desc.d, ops.y, &desc.d, &algorithm.algo, device.workspace(),
                       kWorkspaceBytes, static_cast<cudaStream_t>(stream)),
        "cublasLtMatmul (" + describe(p) + ")");
  return CUBLAS_STATUS_SUCCESS;
}

int fused_epilogue(bool bias, LinearActivation activation) {
  if (activation == LinearActivation::GeluTanh) {
    return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  }
  return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
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
    HFPORT_CUDA_CHECK(cudaMemsetAsync(y.data(), 0, y.nbytes(), static_cast<cudaStream_t>(stream)));
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
    LtDevice& lt = lt_device(device.index);
    const Tensor xc = contiguous_as(kLinear, "x", x, dtype);
    LinearWeightLayout layout = linear_weight_layout(weight);
    const Tensor w = layout.in_place ? weight : contiguous_as(kLinear, "weight", weight, dtype);
    if (!layout.in_place) layout = {true, s.in, true};

    Problem p;
    p.m = s.out;
    p.n = s.rows;
    p.k = s.in;
    p.lda = layout.ld;
    p.ldb = s.in;
    p.ldd = s.out;
    p.transpose_a = layout.out_in;
    p.dtype = dtype;
    p.tf32 = dtype == DType::F32 && options.allow_tf32;
    p.align_a = alignment_of(w.data());
    p.align_b = alignment_of(xc.data());
    p.align_d = alignment_of(result.data());
    Operands ops{w.data(), xc.data(), result.data(), nullptr};

    if (placement == EpiloguePlacement::Fused) {
      Tensor bc = bias.defined() ? contiguous_as(kLinear, "bias", bias, dtype) : Tensor();
      if (bc.defined() && alignment_of(bc.data()) < kBiasAlignment) {
        Tensor aligned = Tensor::empty(dtype, bc.shape(), device);  // cudaMalloc: 256-aligned
        copy_into(kLinear, bc, aligned);
        bc = aligned;
      }
      Problem fused = p;
      fused.epilogue = fused_epilogue(bias.defined(), act);
      fused.align_bias = bias.defined() ? alignment_of(bc.data()) : 0;
      ops.bias = bias.defined() ? bc.data() : nullptr;
      if (try_gemm(lt, fused, ops, false, stream) == CUBLAS_STATUS_SUCCESS) {
        if (act == LinearActivation::Gelu) activation_in_place(result, act, stream);
        return result;
      }
      // No algorithm with this epilogue: the separate placement below.
    }
    if (bias.defined()) fill_with_bias(result, bias, s.rows, s.out, stream);
    if (try_gemm(lt, p, ops, bias.defined(), stream) != CUBLAS_STATUS_SUCCESS) {
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

LinearAlgorithmCacheStats linear_algorithm_cache_stats(const Device& device) {
  std::lock_guard<std::mutex> lock(lt_devices_mutex());
  const auto found = lt_devices().find(device.index);
  if (device.type != DeviceType::CUDA || found == lt_devices().end() || found->second == nullptr) {
    return {};
  }
  return found->second->stats();
}

}  // namespace hfport::cuda

#endif  // HFPORT_WITH_CUBLASLT
