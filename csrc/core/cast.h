// Dtype conversion on the host. Any dtype converts to F32, F64, F16 or BF16 (integers and bool
// exactly where the target can hold them; narrowing floats round to nearest even). Large tensors
// are converted on several threads; the widening bf16 -> f32 case is a shift the compiler
// vectorises, so it runs at memory bandwidth.
#pragma once

#include "core/tensor.h"

namespace hfport {

// Returns `src` itself when it already has `target` dtype; otherwise a new contiguous host tensor.
// Throws DTypeConversionError for a target that is not a float type.
Tensor cast(const Tensor& src, DType target);

// Converts `count` contiguous elements of `src_dtype` at `src` into `dst` of `dst_dtype`
// (the building block of `cast`; no checks beyond the supported-target one).
void cast_contiguous(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count);

}  // namespace hfport
