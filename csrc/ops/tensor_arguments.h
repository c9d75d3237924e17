// What the op entry points (csrc/ops) check about their tensor arguments before a kernel touches
// memory: where the op runs, defined tensors, dtypes, shapes, outputs, overlaps; and how a
// tensor's strides go into a kernel's Params.
//
// Checks throw hfport::Error (DeviceError for a tensor on the wrong device) with a message that
// names the op, the argument, what was expected and what was found:
//   "selective_scan: A must be [dim, N] = [1536, 16], got [16, 1536]".
#pragma once

#include <cstdint>
#include <array>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

namespace hfport {

// Where an op runs: on the device of its defined tensor arguments, which must all be on one device
// (DeviceError naming the op and the first argument that differs, with both devices). CPU when no
// argument is defined. Each op's entry point (ops/<op>.cpp) asks this first and hands CUDA inputs
// to its CUDA side (ops/cuda/<op>.cpp).
using NamedTensor = std::pair<const char*, const Tensor*>;
Device op_device(const char* op, std::initializer_list<NamedTensor> args);

// DeviceError unless `device` (op_device's answer) is the host. The CPU side of an op with a CUDA
// side asks this after op_device: it passes for host tensors and refuses CUDA ones in a build
// without CUDA (and the float64 references, which run on the host in every build).
void require_host_device(const char* op, const Device& device);

// The checks. `op` and `arg` are the names the user typed ("selective_scan", "A").
void require_defined(const char* op, const char* arg, const Tensor& t);
void require_host(const char* op, const char* arg, const Tensor& t);
// Defined and one of F32, F16, BF16, on any device: the dtype check an op's CPU and CUDA sides
// share (op_device has already put every argument on one device).
void require_float_type(const char* op, const char* arg, const Tensor& t);
// Host, and one of F32, F16, BF16 (for the ops that run on the host only).
void require_float(const char* op, const char* arg, const Tensor& t);
// `expected_names` spells the expected shape in words ("[dim, N]"); the message shows both.
void require_shape(const char* op, const char* arg, const Tensor& t, const Shape& expected,
                   const std::string& expected_names);
void require_ndim(const char* op, const char* arg, const Tensor& t, int64_t ndim,
                  const std::string& expected_names);
// `t` has the dtype of `other` (named `other_arg`).
void require_same_dtype(const char* op, const char* arg, const Tensor& t, const char* other_arg,
                        const Tensor& other);

// An I64 or I32 host tensor of shape `expected` (spelled `expected_names`) read into a vector,
// row-major: lengths, offsets and other small index arguments.
std::vector<int64_t> read_index_values(const char* op, const char* arg, const Tensor& t,
                                       const Shape& expected, const std::string& expected_names);

// The small parameter tensors (A, D, biases, norm weights, conv weights) are read as contiguous
// float32: converted (or made contiguous) once per call, which costs nothing next to the kernel.
Tensor as_f32_contiguous(const Tensor& t);

// A float tensor read as four logical dims [batch, groups, seqlen, n] through `strides` (element
// strides of those dims, in that order, so [b, l, g, n] or [b, g, n, l] storage both read), copied
// to a contiguous F32 [batch, groups, seqlen, n]: the scans' B and C with one time step's n values
// adjacent. Parallel over (batch, group).
Tensor pack_bgln_f32(const Tensor& t, const std::array<int64_t, 4>& sizes,
                     const std::array<int64_t, 4>& strides);

// The tensor an op writes its result into: `out` when the caller passed one (it must be a
// contiguous, writable host tensor of `dtype` and `shape`; tests pass one filled with NaN so that elements a
// kernel forgets to write show), else a fresh uninitialised one.
Tensor output_tensor(const char* op, const Tensor& out, DType dtype, const Shape& shape);

// ArgumentError when `out` shares memory with `input` (for ops that read their inputs after they
// start writing the output, like linear's sgemm).
void require_no_overlap(const char* op, const Tensor& out, const Tensor& input,
                        const char* input_name);

// `t`'s element strides, outermost first, into a kernel's stride fields (CPU and CUDA Params):
// read_strides(u, {&p.u_batch_stride, &p.u_dim_stride, &p.u_seq_stride}). At most t.ndim() fields.
inline void read_strides(const Tensor& t, std::initializer_list<int64_t*> fields) {
  size_t dim = 0;
  for (int64_t* field : fields) *field = t.strides()[dim++];
}

}  // namespace hfport
