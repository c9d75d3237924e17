// The RoPE rotation on the CPU: the kernel behind hfport::rope (ops/rope.h), on the RopeParams
// both devices share (kernels/rope_params.h). One call rotates one tensor; rows of (batch,
// position) are spread over threads, each reading its cos/sin row once for all heads.
#pragma once

#include "kernels/rope_params.h"

namespace hfport {

// On checked host pointers (ops/rope.h: plan_rope, set_rope_output).
void rope_cpu(const RopeParams& params);

}  // namespace hfport
