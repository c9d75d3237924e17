"""hfport.ops ssd_scan, ssd_state_update and rms_norm_gated (Mamba-2) against a float64 recurrence
written here and against transformers' own torch code for the same step (modeling_mamba2's
mamba2_chunk_scan, mamba2_selective_state_update and MambaRMSNormGated, the path a CPU runs).
Inputs are fresh random values each run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hfport import ops
from hfport.errors import ArgumentError
from transformers.models.mamba2 import modeling_mamba2

F32_TOL = 1e-5
BF16_TOL = 1e-2


def rel_l2(got, want: torch.Tensor) -> float:
    got = torch.from_dlpack(got) if not isinstance(got, torch.Tensor) else got
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm()).item()


def prepared_dt(dt, dt_bias, softplus, limit):
    dt = dt.double()
    if dt_bias is not None:
        dt = dt + dt_bias.double()
    if softplus:
        dt = torch.where(dt > 20, dt, torch.log1p(torch.exp(dt)))
    return dt.clamp(limit[0], limit[1])


def ssd_reference(x, dt, A, B, C, D=None, dt_bias=None, softplus=False,
                  limit=(0.0, math.inf), initial=None):
    """Float64, one step at a time: S = exp(dt A) S + dt x B^T, y = S C + D x."""
    batch, length, heads, head_dim = x.shape
    groups, n = B.shape[2], B.shape[3]
    dt = prepared_dt(dt, dt_bias, softplus, limit)
    Bh = B.double().repeat_interleave(heads // groups, dim=2)  # [batch, L, H, N]
    Ch = C.double().repeat_interleave(heads // groups, dim=2)
    state = (torch.zeros(batch, heads, head_dim, n, dtype=torch.float64) if initial is None
             else initial.double().clone())
    ys = []
    for t in range(length):
        step = dt[:, t, :, None, None]
        state = torch.exp(step * A.double()[None, :, None, None]) * state + \
            step * x[:, t].double()[..., None] * Bh[:, t, :, None, :]
        y = (state * Ch[:, t, :, None, :]).sum(-1)
        if D is not None:
            y = y + D.double()[None, :, None] * x[:, t].double()
        ys.append(y)
    return torch.stack(ys, dim=1), state


def inputs(batch, length, heads, head_dim, n, groups, dtype=torch.float32, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**31)
    x = torch.randn(batch, length, heads, head_dim, generator=g).to(dtype)
    dt = (torch.randn(batch, length, heads, generator=g) * 0.5 - 1.0).to(dtype)
    A = -torch.exp(torch.randn(heads, generator=g) * 0.5)
    B = torch.randn(batch, length, groups, n, generator=g).to(dtype)
    C = torch.randn(batch, length, groups, n, generator=g).to(dtype)
    D = torch.randn(heads, generator=g)
    dt_bias = torch.randn(heads, generator=g) * 0.3
    return x, dt, A, B, C, D, dt_bias


SHAPES = [
    # batch, L, H, P, N, G, chunk
    (1, 1, 1, 1, 1, 1, 4),
    (2, 37, 4, 24, 16, 1, 8),     # chunk 8 does not divide 37
    (1, 50, 6, 10, 8, 3, 16),     # P 10: not a power of two; 3 groups
    (2, 33, 8, 20, 12, 2, 256),   # chunk larger than L
]


@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_ssd_scan_matches_float64_recurrence(shape):
    batch, length, heads, head_dim, n, groups, chunk = shape
    x, dt, A, B, C, D, dt_bias = inputs(batch, length, heads, head_dim, n, groups)
    initial = torch.randn(batch, heads, head_dim, n)
    y, final = ops.ssd_scan(x, dt, A, B, C, chunk_size=chunk, D=D, dt_bias=dt_bias,
                            dt_softplus=True, initial_states=initial, return_final_states=True)
    want_y, want_final = ssd_reference(x, dt, A, B, C, D, dt_bias, True, initial=initial)
    assert rel_l2(y, want_y) < F32_TOL
    assert rel_l2(final, want_final) < F32_TOL
    assert torch.from_dlpack(final).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_ssd_scan_half_inputs_are_widened(dtype):
    x, dt, A, B, C, D, dt_bias = inputs(2, 21, 4, 12, 8, 2, dtype=dtype)
    y = ops.ssd_scan(x, dt, A, B, C, chunk_size=5, D=D, dt_bias=dt_bias, dt_softplus=True)
    assert torch.from_dlpack(y).dtype == dtype
    want, _ = ssd_reference(x, dt, A, B, C, D, dt_bias, True)
    assert rel_l2(y, want) < BF16_TOL


@pytest.mark.parametrize("limit", [(0.0, math.inf), (0.2, 0.6)])
def test_ssd_scan_equals_transformers_chunk_scan(limit):
    # transformers' torch path (no mamba_ssm on a CPU), chunk 16 not dividing 45, 2 groups.
    x, dt, A, B, C, D, dt_bias = inputs(2, 45, 6, 10, 8, 2)
    initial = torch.randn(2, 6, 10, 8)
    with torch.no_grad():
        want, want_final = modeling_mamba2.mamba2_chunk_scan(
            x, dt, A, B, C, chunk_size=16, D=D, dt_bias=dt_bias, initial_states=initial,
            dt_softplus=True, dt_limit=limit, return_final_states=True)
    y, final = ops.ssd_scan(x, dt, A, B, C, chunk_size=16, D=D, dt_bias=dt_bias,
                            dt_softplus=True, dt_limit=limit, initial_states=initial,
                            return_final_states=True)
    assert rel_l2(y, want) < F32_TOL
    assert rel_l2(final, want_final) < F32_TOL
    if limit != (0.0, math.inf):  # the limit binds, so the test sees a scan that ignored it
        free, _ = ssd_reference(x, dt, A, B, C, D, dt_bias, True, initial=initial)
        assert rel_l2(free, want) > 1e-2


def test_ssd_state_update_chained_equals_scan_and_transformers_step():
    batch, length, heads, head_dim, n, groups = 2, 9, 6, 10, 8, 3
    x, dt, A, B, C, D, dt_bias = inputs(batch, length, heads, head_dim, n, groups)
    initial = torch.randn(batch, heads, head_dim, n)
    y_scan, final = ops.ssd_scan(x, dt, A, B, C, chunk_size=4, D=D, dt_bias=dt_bias,
                                 dt_softplus=True, initial_states=initial,
                                 return_final_states=True)
    state = initial.clone()
    theirs = initial.clone()
    steps = []
    for t in range(length):
        y = ops.ssd_state_update(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D=D,
                                 dt_bias=dt_bias, dt_softplus=True)
        steps.append(torch.from_dlpack(y))
        # transformers' decode step takes dt, A, D and dt_bias expanded over head_dim.
        with torch.no_grad():
            want = modeling_mamba2.mamba2_selective_state_update(
                theirs, x[:, t], dt[:, t, :, None].expand(-1, -1, head_dim),
                A[:, None, None].expand(-1, head_dim, n), B[:, t], C[:, t],
                D[:, None].expand(-1, head_dim), dt_bias=dt_bias[:, None].expand(-1, head_dim),
                dt_softplus=True)
        assert rel_l2(y, want) < F32_TOL, f"step {t}"
    assert rel_l2(torch.stack(steps, dim=1), torch.from_dlpack(y_scan)) < F32_TOL
    assert rel_l2(state, torch.from_dlpack(final)) < F32_TOL
    assert rel_l2(state, theirs) < F32_TOL


@pytest.mark.parametrize("group_size", [0, 12])
def test_rms_norm_gated(group_size):
    hidden = 48
    x = torch.randn(3, 5, hidden)
    gate = torch.randn(3, 5, hidden)
    weight = 1.0 + 0.2 * torch.randn(hidden)
    y = ops.rms_norm_gated(x, weight, gate, eps=1e-5, group_size=group_size)
    v = x.double() * F.silu(gate.double())
    size = group_size or hidden
    grouped = v.view(3, 5, hidden // size, size)
    want = (grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + 1e-5)).view(3, 5, hidden)
    want = want * weight.double()
    assert rel_l2(y, want) < F32_TOL
    if group_size == 0:  # transformers' MambaRMSNormGated: gate first, one group
        norm = modeling_mamba2.MambaRMSNormGated(hidden, eps=1e-5)
        with torch.no_grad():
            norm.weight.copy_(weight)
            assert rel_l2(y, norm(x, gate)) < F32_TOL


def test_errors_name_the_argument():
    x, dt, A, B, C, _, _ = inputs(1, 5, 4, 6, 3, 2)
    with pytest.raises(ArgumentError, match=r"ssd_scan: dt must be \[batch, L, H\] = \[1, 5, 4\], "
                                            r"got \[1, 5, 3\]"):
        ops.ssd_scan(x, dt[..., :3], A, B, C)
    with pytest.raises(ArgumentError, match="B's group count G = 3 must be >= 1 and divide the "
                                            "head count H = 4"):
        ops.ssd_scan(x, dt, A, torch.randn(1, 5, 3, 3), torch.randn(1, 5, 3, 3))
    with pytest.raises(ArgumentError, match="chunk_size must be >= 1, got 0"):
        ops.ssd_scan(x, dt, A, B, C, chunk_size=0)
    with pytest.raises(ArgumentError, match="dt_min = 1, dt_max = 0.5"):
        ops.ssd_scan(x, dt, A, B, C, dt_limit=(1.0, 0.5))
    with pytest.raises(ArgumentError, match=r"ssd_state_update: state must be \[batch, H, P, N\]"):
        ops.ssd_state_update(torch.zeros(1, 4, 6), x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0])
    with pytest.raises(ArgumentError, match="rms_norm_gated: group_size must be 0"):
        ops.rms_norm_gated(torch.randn(2, 8), torch.ones(8), group_size=3)
