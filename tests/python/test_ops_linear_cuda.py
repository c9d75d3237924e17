"""hfport.ops.linear on CUDA (cuBLASLt) against torch.nn.functional.linear on CUDA, float64 and
hfport's CPU op: f32 / f16 / bf16 (+ TF32), odd sizes (rows 1, 17, 1000; in and out odd, not
multiples of 8), bias and both GELUs, transposed and strided weights, outputs poisoned with NaN.

Every test needs a GPU and skips elsewhere, saying what is missing.
"""

from __future__ import annotations

import hfport
import pytest
import torch
import torch.nn.functional as F
from cuda_testing import TOLERANCE, needs_cuda, poisoned, randn, relative_l2
from hfport import ops

pytestmark = [
    needs_cuda,
    pytest.mark.skipif(
        not hfport._hfport.built_with_cublaslt(),
        reason="this build has no cuBLASLt (linear on CUDA raises DeviceError)",
    ),
]

# (rows, in, out). in = 1 and out = 1 are shapes the CPU op takes that cuBLASLt's heuristic may
# answer INVALID_VALUE for (kernels/cuda/gemm_cublaslt.cpp); a Mamba with dt_rank 1 has in = 1.
SIZES = [(1, 45, 29), (17, 45, 29), (1000, 37, 71), (16, 64, 128), (5, 1, 7), (5, 7, 1)]
APPROXIMATE = {"gelu": "none", "gelu_tanh": "tanh"}


def reference(x, weight, bias, activation):
    """float64 on the CPU, from the exact inputs."""
    y = F.linear(x.cpu().double(), weight.cpu().double(), None if bias is None else bias.cpu().double())
    return y if activation is None else F.gelu(y, approximate=APPROXIMATE[activation])


def torch_linear(x, weight, bias, activation):
    y = F.linear(x, weight, bias)
    return y if activation is None else F.gelu(y, approximate=APPROXIMATE[activation])


@pytest.mark.parametrize("activation", [None, "gelu_tanh", "gelu"])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_linear_matches_torch_and_the_cpu_op(dtype, size, with_bias, activation):
    rows, n_in, n_out = size
    x, weight = randn(rows, n_in, dtype=dtype), randn(n_out, n_in, dtype=dtype)
    bias = randn(n_out, dtype=dtype) if with_bias else None
    out = poisoned((rows, n_out), dtype)
    result = torch.from_dlpack(ops.linear(x, weight, bias, activation=activation, out=out))
    assert result.data_ptr() == out.data_ptr()
    tol = TOLERANCE[dtype]
    assert relative_l2(out, reference(x, weight, bias, activation)) < tol
    assert relative_l2(out, torch_linear(x, weight, bias, activation)) < tol
    on_cpu = ops.linear(x.cpu(), weight.cpu(), None if bias is None else bias.cpu(),
                        activation=activation)
    assert relative_l2(out, torch.from_dlpack(on_cpu)) < tol


def test_f32_is_f32_unless_tf32_is_allowed():
    x, weight = randn(64, 257), randn(129, 257)
    want = reference(x, weight, None, None)
    assert relative_l2(torch.from_dlpack(ops.linear(x, weight)), want) < TOLERANCE[torch.float32]
    tf32 = torch.from_dlpack(ops.linear(x, weight, allow_tf32=True))
    assert relative_l2(tf32, want) < 5e-3  # TF32 keeps 10 mantissa bits


@pytest.mark.parametrize("activation", [None, "gelu_tanh"])
def test_weight_layouts_strided_input_and_bias(activation):
    dtype = torch.bfloat16
    x = randn(3, 24, 10, dtype=dtype).transpose(1, 2)  # [3, 10, 24], not contiguous
    weights = {
        "transposed [in, out] (GPT-2 Conv1D)": randn(24, 17, dtype=dtype).t(),
        "padded rows": randn(17, 30, dtype=dtype)[:, :24],
        "every other column (copied)": randn(17, 48, dtype=dtype)[:, ::2],
    }
    bias = randn(34)[::2]  # f32 and strided: converted to bf16 for the epilogue
    for name, weight in weights.items():
        out = poisoned((3, 10, 17), dtype)
        ops.linear(x, weight, bias, activation=activation, out=out)
        want = reference(x, weight, bias, activation)
        assert relative_l2(out, want) < TOLERANCE[dtype], name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_operands_that_start_off_alignment(dtype):
    """Views one element into their storage: 2-byte (bf16) or 4-byte (f32) aligned pointers, which
    the algorithm must be chosen for."""
    def offset_by_one(*shape):
        n = 1
        for size in shape:
            n *= size
        return randn(n + 1, dtype=dtype)[1:].view(*shape)

    x, weight, bias = offset_by_one(5, 37), offset_by_one(23, 37), offset_by_one(23)
    out = poisoned((5, 23), dtype)
    ops.linear(x, weight, bias, activation="gelu_tanh", out=out)
    assert relative_l2(out, reference(x, weight, bias, "gelu_tanh")) < TOLERANCE[dtype]


def test_the_same_problem_gives_the_same_bits():
    x, weight = randn(300, 1024, dtype=torch.bfloat16), randn(96, 1024, dtype=torch.bfloat16)
    first = torch.from_dlpack(ops.linear(x, weight)).clone()
    for _ in range(3):
        assert torch.equal(torch.from_dlpack(ops.linear(x, weight)), first)


def test_leading_dimensions_are_kept():
    x = randn(2, 5, 33, dtype=torch.float16)
    weight = randn(7, 33, dtype=torch.float16)
    result = torch.from_dlpack(ops.linear(x, weight))
    assert result.shape == (2, 5, 7) and result.device.type == "cuda"
    assert relative_l2(result, reference(x, weight, None, None)) < TOLERANCE[torch.float16]


def test_errors_on_cuda():
    x, weight = randn(4, 16), randn(8, 16)
    with pytest.raises(hfport.errors.DeviceError, match="linear: all tensors must be on one device"):
        ops.linear(x, weight.cpu())
    with pytest.raises(hfport.errors.ArgumentError, match="linear: out must have dtype F32, got F16"):
        ops.linear(x, weight, out=poisoned((4, 8), torch.float16))
    square = randn(4, 4)
    with pytest.raises(hfport.errors.ArgumentError, match="linear: out shares memory with x"):
        ops.linear(square, randn(4, 4), out=square)
