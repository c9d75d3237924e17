"""hfport.ops.selective_scan on CUDA tensors (the chunked parallel scan of
kernels/cuda/selective_scan.cu) against the CPU op and the float64 recurrence of test_ops_scan.py.

Lengths cross the kernel's block shapes: 1 and 17 (part of one warp), 256 and 257 (the switch from
the one-warp block to the 2048-step one), 1000 (a partial chunk), 2049 (a full chunk plus one
step, so the state is carried). Inputs are fresh random values (never zeros), outputs are poisoned
with NaN, strided and misaligned inputs take the kernel's element-by-element loads. Everything
skips without CUDA, saying which part is missing.
"""

from __future__ import annotations

import pytest
import torch
from cuda_testing import TOLERANCE, needs_cuda, poisoned, randn, relative_l2
from hfport import ops
from test_ops_scan import scan_reference  # float64, on the inputs' device

pytestmark = needs_cuda

# The state is f32 on every side and computed from the same (exactly widened) inputs, so only f32
# arithmetic separates it from float64, whatever the inputs' dtype.
STATE_TOLERANCE = 1e-5


def bc_pair(batch, dim, n, length, groups, dtype, transposed=False):
    """B and C: groups 0 -> [dim, N]; 1 -> [batch, N, L]; G >= 2 -> [batch, G, N, L]. With
    `transposed`, views of [.., L, N] storage (what MambaMixer passes)."""
    def one():
        if groups == 0:
            return randn(dim, n, dtype=dtype)
        lead = (batch,) if groups == 1 else (batch, groups)
        if transposed:
            return randn(*lead, length, n, dtype=dtype).transpose(-1, -2)
        return randn(*lead, n, length, dtype=dtype)

    return one(), one()


def scan_inputs(batch, dim, n, length, groups, dtype, softplus=True):
    u = randn(batch, dim, length, dtype=dtype)
    delta = randn(batch, dim, length) * 0.5
    if not softplus:
        delta = delta.abs() + 0.05  # dt > 0 keeps the recurrence decaying without softplus
    delta = delta.to(dtype)
    A = -torch.exp(randn(dim, n) * 0.5)
    B, C = bc_pair(batch, dim, n, length, groups, dtype)
    D = randn(dim)
    z = randn(batch, dim, length, dtype=dtype)
    delta_bias = randn(dim) * 0.3
    return u, delta, A, B, C, D, z, delta_bias


def cpu(t):
    return None if t is None else t.cpu()


def run_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus=False):
    """The CUDA op into a poisoned output; returns (y, last state) as torch tensors."""
    out = poisoned(tuple(u.shape), u.dtype)
    y, last = ops.selective_scan(u, delta, A, B, C, D, z, delta_bias, softplus,
                                 return_last_state=True, out=out)
    y, last = torch.from_dlpack(y), torch.from_dlpack(last)
    assert y.data_ptr() == out.data_ptr()
    assert y.device.type == "cuda" and last.device.type == "cuda"
    assert y.dtype == u.dtype and last.dtype == torch.float32
    assert tuple(last.shape) == (u.shape[0], u.shape[1], A.shape[1])
    assert not torch.isnan(y).any(), "an output element was never written"
    assert not torch.isnan(last).any()
    return y, last


def check(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus=False):
    """The CUDA op against the CPU op on the same values and against float64."""
    y, last = run_cuda(u, delta, A, B, C, D, z, delta_bias, softplus)
    tol = TOLERANCE[u.dtype]
    want_y, want_last = scan_reference(u, delta, A, B, C, D, z, delta_bias, softplus)
    assert relative_l2(y, want_y) < tol
    assert relative_l2(last, want_last) < STATE_TOLERANCE
    cpu_y, cpu_last = ops.selective_scan(cpu(u), cpu(delta), cpu(A), cpu(B), cpu(C), cpu(D),
                                         cpu(z), cpu(delta_bias), softplus,
                                         return_last_state=True)
    assert relative_l2(y, torch.from_dlpack(cpu_y)) < tol
    assert relative_l2(last, torch.from_dlpack(cpu_last)) < STATE_TOLERANCE
    return y, last


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("length", [1, 17, 256, 257, 1000, 2049])
@pytest.mark.parametrize("groups", [0, 1, 2])
def test_scan_matches_cpu_and_float64(dtype, length, groups):
    check(*scan_inputs(2, 6, 16, length, groups, dtype), softplus=True)


@pytest.mark.parametrize("n", [1, 16, 64, 256])
@pytest.mark.parametrize("length", [17, 2049])
def test_state_sizes(n, length):
    check(*scan_inputs(2, 4, n, length, 1, torch.float32), softplus=True)


@pytest.mark.parametrize("with_d", [False, True])
@pytest.mark.parametrize("with_z", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("softplus", [False, True])
def test_optional_inputs(with_d, with_z, with_bias, softplus):
    u, delta, A, B, C, D, z, bias = scan_inputs(2, 6, 16, 1000, 2, torch.float32, softplus)
    check(u, delta, A, B, C, D if with_d else None, z if with_z else None,
          bias if with_bias else None, softplus)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("length", [17, 1000, 2049])
def test_strided_inputs(dtype, length):
    batch, dim, n = 2, 6, 16
    u = randn(batch, length, dim, dtype=dtype).transpose(1, 2)     # [batch, dim, L], seq stride dim
    delta = (randn(batch, length, dim) * 0.5).to(dtype).transpose(1, 2)
    z = randn(batch, dim, 2 * length, dtype=dtype)[:, :, ::2]      # every other column
    A = -torch.exp(randn(dim, n) * 0.5)
    B, C = bc_pair(batch, dim, n, length, 1, dtype, transposed=True)
    assert not u.is_contiguous() and not delta.is_contiguous() and not B.is_contiguous()
    check(u, delta, A, B, C, randn(dim), z, randn(dim) * 0.3, softplus=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_misaligned_rows(dtype):
    """Rows that start one element past a 16-byte boundary: the kernel's element-wise loads."""
    batch, dim, n, length = 2, 6, 16, 1000
    u = randn(batch, dim, length + 1, dtype=dtype)[:, :, 1:]
    delta = (randn(batch, dim, length + 1) * 0.5).to(dtype)[:, :, 1:]
    z = randn(batch, dim, length + 1, dtype=dtype)[:, :, 1:]
    B = randn(batch, n, length + 1, dtype=dtype)[:, :, 1:]
    C = randn(batch, n, length + 1, dtype=dtype)[:, :, 1:]
    A = -torch.exp(randn(dim, n) * 0.5)
    check(u, delta, A, B, C, randn(dim), z, randn(dim) * 0.3, softplus=True)


@pytest.mark.parametrize("groups", [0, 1])
def test_other_dtypes_for_small_operands(groups):
    """u in f32 with B, C, D, delta_bias in bf16 and A in f16: each read in its own dtype."""
    batch, dim, n, length = 2, 6, 16, 300
    u, delta, A, _, _, D, z, bias = scan_inputs(batch, dim, n, length, groups, torch.float32)
    B, C = bc_pair(batch, dim, n, length, groups, torch.bfloat16)
    check(u, delta, A.half(), B, C, D.bfloat16(), z, bias.bfloat16(), softplus=True)


def test_more_channels_than_the_grid():
    """batch x dim above the 65535 blocks of the grid: the kernel loops over channels."""
    batch, dim, n, length = 2, 40000, 2, 3
    u, delta, A, B, C, D, z, bias = scan_inputs(batch, dim, n, length, 1, torch.float32)
    check(u, delta, A, B, C, D, z, bias, softplus=True)


def test_empty_sequence_gives_a_zero_state():
    u, delta, A, B, C, D, z, bias = scan_inputs(2, 6, 16, 0, 1, torch.float32)
    y, last = ops.selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    assert tuple(torch.from_dlpack(y).shape) == (2, 6, 0)
    assert torch.equal(torch.from_dlpack(last), torch.zeros(2, 6, 16, device="cuda"))


@pytest.mark.parametrize("length", [17, 2049])
def test_repeated_runs_are_identical(length):
    inputs = scan_inputs(2, 6, 16, length, 2, torch.bfloat16)
    first = run_cuda(*inputs, softplus=True)
    second = run_cuda(*inputs, softplus=True)
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
