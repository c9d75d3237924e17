// The CUDA half of hfport::attention (ops/attention.h), called by it after check_attention with
// the tensors on one CUDA device: allocates out (and lse when asked) on that device, makes it
// current and runs a kernel of kernels/cuda (attention.h, flash_attention.h) on the work stream
// (op_stream); the result is ready in order on that stream. Compiled only in builds with CUDA.
#pragma once

#include "ops/attention.h"

namespace hfport::cuda {

AttentionResult attention(const CheckedAttention& checked, bool return_lse);

}  // namespace hfport::cuda
