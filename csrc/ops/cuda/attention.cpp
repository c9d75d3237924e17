// The Tensor-level CUDA side of hfport::attention (ops/attention.h): the entry point has
// checked the arguments and found them on one CUDA device; here the output and logsumexp are
// allocated on that device and the kernel runs on hfport's work stream: the flash kernel when it
// takes the call (f16/bf16, its head dims, no attn_mask, aligned operands), else the simple one.
// HFPORT_CUDA_ATTENTION=simple in the environment forces the simple kernel (for tests and for
// comparing the two), as HFPORT_ATTENTION_KERNELS does for the CPU micro-kernels.
#include "ops/cuda/attention.h"

#include <cstdlib>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/flash_attention.h"
#include "ops/cuda/device_tensor.h"

namespace hfport::cuda {

AttentionResult attention(const CheckedAttention& checked, bool return_lse) {
  const CurrentDevice current(checked.device);
  AttentionParams p = checked.params;
  AttentionResult result;
  result.out = output_on("attention", Tensor(), p.dtype, checked.out_shape, checked.device);
  p.out = result.out.data();
  if (return_lse) {
    result.lse = output_on("attention", Tensor(), DType::F32, {p.batch, p.q_heads, p.q_len},
                           checked.device);
    p.lse = result.lse.data_as<float>();
  }
  // The copies `checked` keeps alive are freed by the caller after this returns; cudaFree
  // synchronizes with the device first, so the kernel has read them by then.
  const char* forced = std::getenv("HFPORT_CUDA_ATTENTION");
  const bool simple_only = forced != nullptr && std::string(forced) == "simple";
  if (!simple_only && flash_attention_supports(p)) {
    flash_attention(p, op_stream());
  } else {
    attention_simple(p, op_stream());
  }
  return result;
}

}  // namespace hfport::cuda
