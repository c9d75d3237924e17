// The cuBLASLt GEMM of linear on CUDA: the problem in cuBLASLt's column-major terms, the
// per-device handle / workspace / algorithm cache, and the matmul (gemm_cublaslt.h explains the
// precision and the choices).
#include "kernels/cuda/gemm_cublaslt.h"

#ifdef HFPORT_WITH_CUBLASLT

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "core/error.h"

namespace hfport::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

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
// m = out, n = rows, k = in (gemm_cublaslt.h). Everything the chosen algorithm depends on is here; the
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

int epilogue_of(GemmEpilogue epilogue) {
  switch (epilogue) {
    case GemmEpilogue::Bias: return CUBLASLT_EPILOGUE_BIAS;
    case GemmEpilogue::Gelu: return CUBLASLT_EPILOGUE_GELU;
    case GemmEpilogue::GeluBias: return CUBLASLT_EPILOGUE_GELU_BIAS;
    case GemmEpilogue::None: break;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

}  // namespace

bool gemm_cublaslt(const CublasLtGemmParams& params, void* stream) {
  LtDevice& device = lt_device(params.device);
  Problem p;
  p.m = params.m;
  p.n = params.n;
  p.k = params.k;
  p.lda = params.lda;
  p.ldb = params.ldb;
  p.ldd = params.ldd;
  p.transpose_a = params.transpose_a;
  p.dtype = params.dtype;
  p.tf32 = params.tf32;
  p.epilogue = epilogue_of(params.epilogue);
  p.align_a = alignment_of(params.a);
  p.align_b = alignment_of(params.b);
  p.align_d = alignment_of(params.d);
  p.align_bias = params.bias != nullptr ? alignment_of(params.bias) : 0;
  Descriptors desc(p, p.align_bias != 0 ? params.bias : nullptr);
  const Algorithm algorithm =
      device.algorithm(p, [&] { return ask_heuristic(device, p, desc); });
  if (!algorithm.found) return false;
  const float alpha = 1.0f, beta = params.accumulate ? 1.0f : 0.0f;
  check(cublasLtMatmul(device.handle(), &desc.op, &alpha, params.a, &desc.a, params.b, &desc.b,
                       &beta, params.d, &desc.d, params.d, &desc.d, &algorithm.algo,
                       device.workspace(), kWorkspaceBytes, static_cast<cudaStream_t>(stream)),
        "cublasLtMatmul (" + describe(p) + ")");
  return true;
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
