// Bicubic resize on the CPU, on the Params of kernels/bicubic_params.h. The entry point is
// hfport::interpolate_bicubic (ops/interpolate.h).
//
// Bit-for-bit with torch: the taps and weights of each axis are computed once, in F32 (and the
// few steps torch takes in double, in double), with torch's expressions in torch's order, and each
// output is accumulated in F32 in torch's order: the four column taps of a row, then the four rows
// (antialias off); the taps of one axis in index order (antialias on). That order is why this file
// is compiled with -ffp-contract=off (CMakeLists.txt): a fused multiply-add rounds once where torch
// rounds twice, and the results would differ in the last bit.
//
// Planes (batch x channels) and output rows are spread over threads; every output is computed by
// one thread from inputs nobody writes, so the split changes no value.
#pragma once

#include "kernels/bicubic_params.h"

namespace hfport {

// On checked Params: host pointers, every size >= 1.
void bicubic_cpu(const BicubicParams& params);

}  // namespace hfport
