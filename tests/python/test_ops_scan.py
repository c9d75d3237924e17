"""hfport.ops selective scan, its decode step, and causal conv1d against references written here.

The float64 references follow the recurrence as the Mamba paper and mamba_ssm's selective_scan_ref
write it, one time step at a time; the model-level check composes hfport ops into transformers'
MambaMixer and compares the mixer output. Inputs are fresh random values each run (never zeros).
"""

from __future__ import annotations

import hfport
import pytest
import torch
import torch.nn.functional as F
from hfport import ops
from transformers import MambaConfig
from transformers.models.mamba import modeling_mamba

F32_TOL = 1e-5
BF16_TOL = 1e-2


def rel_l2(got, want: torch.Tensor) -> float:
    got = torch.from_dlpack(got) if not isinstance(got, torch.Tensor) else got
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm()).item()


def softplus64(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 20, x, torch.log1p(torch.exp(x)))


def scan_reference(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus=False):
    """Float64 sequential scan on the inputs' device (the CUDA tests use it too); B, C as
    [dim, N], [batch, N, L] or [batch, G, N, L]. Returns (y, last state)."""
    u, delta, A = u.double(), delta.double(), A.double()
    batch, dim, length = u.shape
    n = A.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias.double()[None, :, None]
    if softplus:
        delta = softplus64(delta)

    def per_channel(m: torch.Tensor) -> torch.Tensor:  # -> [batch, dim, N, L]
        m = m.double()
        if m.dim() == 2:
            return m[None, :, :, None].expand(batch, dim, n, length)
        if m.dim() == 3:
            return m[:, None].expand(batch, dim, n, length)
        return m.repeat_interleave(dim // m.shape[1], dim=1)

    Bx, Cx = per_channel(B), per_channel(C)
    h = torch.zeros(batch, dim, n, dtype=torch.float64, device=u.device)
    ys = []
    for t in range(length):
        dt = delta[:, :, t, None]
        h = torch.exp(dt * A) * h + dt * Bx[..., t] * u[:, :, t, None]
        ys.append((h * Cx[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else torch.zeros_like(u)
    if D is not None:
        y = y + D.double()[None, :, None] * u
    if z is not None:
        y = y * F.silu(z.double())
    return y, h


def scan_inputs(batch, dim, n, length, bc="time", groups=2, dtype=torch.float32):
    u = torch.randn(batch, dim, length, dtype=dtype)
    delta = (torch.randn(batch, dim, length) * 0.5).to(dtype)
    A = -torch.exp(torch.randn(dim, n) * 0.5)
    if bc == "channel":
        B, C = torch.randn(dim, n), torch.randn(dim, n)
    elif bc == "time":
        B, C = torch.randn(batch, n, length), torch.randn(batch, n, length)
    else:
        B, C = torch.randn(batch, groups, n, length), torch.randn(batch, groups, n, length)
    D = torch.randn(dim)
    z = torch.randn(batch, dim, length, dtype=dtype)
    delta_bias = torch.randn(dim) * 0.3
    return u, delta, A, B.to(dtype), C.to(dtype), D, z, delta_bias


@pytest.mark.parametrize("shape", [(1, 5, 3, 7), (2, 19, 16, 33), (3, 40, 4, 130)])
@pytest.mark.parametrize("bc", ["channel", "time", "grouped"])
def test_selective_scan_matches_float64_reference(shape, bc):
    batch, dim, n, length = shape
    if bc == "grouped" and dim % 2:
        dim += 1
    u, delta, A, B, C, D, z, bias = scan_inputs(batch, dim, n, length, bc)
    out, last = ops.selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    want, want_last = scan_reference(u, delta, A, B, C, D, z, bias, softplus=True)
    assert tuple(out.shape) == (batch, dim, length)
    assert rel_l2(out, want) < F32_TOL
    assert rel_l2(last, want_last) < F32_TOL
    assert torch.from_dlpack(last).dtype == torch.float32


def test_selective_scan_without_optional_inputs():
    u, delta, A, B, C, *_ = scan_inputs(2, 17, 8, 70)
    delta = delta.abs()  # no softplus: keep dt positive so the recurrence decays
    out = ops.selective_scan(u, delta, A, B, C)
    want, _ = scan_reference(u, delta, A, B, C)
    assert rel_l2(out, want) < F32_TOL


def test_selective_scan_bf16():
    u, delta, A, B, C, D, z, bias = scan_inputs(2, 24, 16, 50, "time", dtype=torch.bfloat16)
    out = ops.selective_scan(u, delta, A, B, C, D=D, z=z, delta_bias=bias, delta_softplus=True)
    assert torch.from_dlpack(out).dtype == torch.bfloat16
    want, _ = scan_reference(u, delta, A, B, C, D, z, bias, softplus=True)
    assert rel_l2(out, want) < BF16_TOL


def test_selective_scan_strided_inputs():
    batch, dim, n, length = 2, 21, 5, 40
    u = torch.randn(batch, length, dim).transpose(1, 2)       # [batch, dim, L], stride 1 on dim
    delta = torch.randn(batch, length, dim).transpose(1, 2)
    z = torch.randn(batch, dim, 2 * length)[:, :, ::2]        # every other column
    A = -torch.exp(torch.randn(dim, n))
    B = torch.randn(batch, length, n).transpose(1, 2)          # what MambaMixer passes
    C = torch.randn(batch, length, n).transpose(1, 2)
    out = ops.selective_scan(u, delta, A, B, C, z=z, delta_softplus=True)
    want, _ = scan_reference(u, delta, A, B, C, z=z, softplus=True)
    assert rel_l2(out, want) < F32_TOL


def test_selective_scan_matches_transformers_scan_function():
    u, delta, A, B, C, D, z, bias = scan_inputs(2, 24, 16, 37, "time")
    want, want_state = modeling_mamba.mamba_selective_scan(
        u, delta, A, B, C, D=D, z=z, delta_bias=bias, delta_softplus=True, return_last_state=True
    )
    out, last = ops.selective_scan(
        u, delta, A, B, C, D=D, z=z, delta_bias=bias, delta_softplus=True, return_last_state=True
    )
    assert rel_l2(out, want) < F32_TOL
    assert rel_l2(last, want_state) < F32_TOL


def tiny_mixer() -> modeling_mamba.MambaMixer:
    config = MambaConfig(hidden_size=16, state_size=8, expand=2, conv_kernel=4,
                         time_step_rank=3, num_hidden_layers=1)
    mixer = modeling_mamba.MambaMixer(config, 0).eval()
    with torch.no_grad():  # fresh random weights everywhere, so every term counts
        for p in mixer.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    mixer.requires_grad_(False)  # torch exports no tensor that requires grad through DLPack
    return mixer


def hfport_mixer(mixer: modeling_mamba.MambaMixer, hidden: torch.Tensor) -> torch.Tensor:
    """MambaMixer.forward (no cache) composed from hfport ops."""
    t = torch.from_dlpack
    rank, n = mixer.time_step_rank, mixer.ssm_state_size
    projected = t(ops.linear(hidden, mixer.in_proj.weight, mixer.in_proj.bias)).transpose(1, 2)
    x, gate = projected.chunk(2, dim=1)
    x = t(ops.causal_conv1d(x, mixer.conv1d.weight[:, 0, :], mixer.conv1d.bias, "silu"))
    x_db = t(ops.linear(x.transpose(1, 2), mixer.x_proj.weight))
    time_step, B, C = torch.split(x_db, [rank, n, n], dim=-1)
    delta = t(ops.linear(time_step, mixer.dt_proj.weight)).transpose(1, 2)
    A = -torch.exp(mixer.A_log.float())
    y = t(ops.selective_scan(x, delta, A, B.transpose(1, 2), C.transpose(1, 2), D=mixer.D,
                             z=gate, delta_bias=mixer.dt_proj.bias, delta_softplus=True))
    return t(ops.linear(y.transpose(1, 2), mixer.out_proj.weight, mixer.out_proj.bias))


def test_composed_ops_match_transformers_mamba_mixer():
    mixer = tiny_mixer()
    hidden = torch.randn(2, 13, 16)
    with torch.no_grad():
        want = mixer(hidden)
        got = hfport_mixer(mixer, hidden)
    assert rel_l2(got, want) < F32_TOL


def test_chained_state_updates_equal_the_full_scan():
    batch, dim, n, length = 2, 19, 6, 23
    u, delta, A, B, C, D, z, bias = scan_inputs(batch, dim, n, length, "time")
    full, last = ops.selective_scan(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    state = torch.zeros(batch, dim, n)  # the scan starts from zero; updated in place, zero-copy
    steps = []
    for t in range(length):
        y = ops.selective_state_update(state, u[:, :, t], delta[:, :, t], A, B[:, :, t],
                                       C[:, :, t], D=D, z=z[:, :, t], dt_bias=bias,
                                       dt_softplus=True)
        steps.append(torch.from_dlpack(y))
    assert rel_l2(torch.stack(steps, dim=-1), torch.from_dlpack(full)) < F32_TOL
    assert rel_l2(state, torch.from_dlpack(last)) < F32_TOL


def test_state_update_from_a_random_state_matches_float64():
    batch, dim, n = 3, 10, 7
    state = torch.randn(batch, dim, n)
    before = state.double().clone()
    x, dt, z = torch.randn(batch, dim), torch.randn(batch, dim), torch.randn(batch, dim)
    A, B, C = -torch.exp(torch.randn(dim, n)), torch.randn(batch, n), torch.randn(batch, n)
    D, bias = torch.randn(dim), torch.randn(dim)
    y = ops.selective_state_update(state, x, dt, A, B, C, D=D, z=z, dt_bias=bias,
                                   dt_softplus=True)
    dt64 = softplus64(dt.double() + bias.double())[..., None]
    decay = torch.exp(dt64 * A.double())
    want_state = decay * before + dt64 * B.double()[:, None] * x.double()[..., None]
    want_y = (want_state * C.double()[:, None]).sum(-1) + D.double() * x.double()
    want_y = want_y * F.silu(z.double())
    assert rel_l2(state, want_state) < F32_TOL
    assert rel_l2(y, want_y) < F32_TOL


def test_state_update_matches_transformers_step():
    batch, dim, n = 2, 12, 4
    state = torch.randn(batch, dim, n)
    theirs = state.clone()
    x, dt, z = torch.randn(batch, dim), torch.randn(batch, dim), torch.randn(batch, dim)
    A, B, C = -torch.exp(torch.randn(dim, n)), torch.randn(batch, n), torch.randn(batch, n)
    D, bias = torch.randn(dim), torch.randn(dim)
    want = modeling_mamba.mamba_selective_state_update(theirs, x, dt, A, B, C, D=D, dt_bias=bias,
                                                       dt_softplus=True, z=z)
    y = ops.selective_state_update(state, x, dt, A, B, C, D=D, z=z, dt_bias=bias, dt_softplus=True)
    assert rel_l2(y, want) < F32_TOL
    assert rel_l2(state, theirs) < F32_TOL


def conv_reference(x, weight, bias, silu):
    width = weight.shape[1]
    out = F.conv1d(x.double(), weight.double()[:, None, :], None if bias is None else bias.double(),
                   padding=width - 1, groups=x.shape[1])[..., : x.shape[2]]
    return F.silu(out) if silu else out


@pytest.mark.parametrize("shape", [(1, 3, 1, 2), (2, 17, 29, 4), (3, 8, 100, 3)])
@pytest.mark.parametrize("silu", [False, True])
def test_causal_conv1d_matches_float64(shape, silu):
    batch, dim, length, width = shape
    x, weight, bias = torch.randn(batch, dim, length), torch.randn(dim, width), torch.randn(dim)
    out = ops.causal_conv1d(x, weight, bias, "silu" if silu else None)
    assert rel_l2(out, conv_reference(x, weight, bias, silu)) < F32_TOL


def test_causal_conv1d_bf16_and_strided():
    x = torch.randn(2, 30, 11).transpose(1, 2).to(torch.bfloat16)  # [2, 11, 30], dim stride 1
    weight = torch.randn(11, 4)
    out = ops.causal_conv1d(x, weight, activation="silu")
    assert torch.from_dlpack(out).dtype == torch.bfloat16
    assert rel_l2(out, conv_reference(x, weight, None, True)) < BF16_TOL


@pytest.mark.parametrize("state_len", [4, 3, 6])
def test_causal_conv1d_steps_equal_the_full_conv(state_len):
    batch, dim, length, width = 2, 9, 15, 4
    x, weight, bias = torch.randn(batch, dim, length), torch.randn(dim, width), torch.randn(dim)
    full = torch.from_dlpack(ops.causal_conv1d(x, weight, bias, "silu"))
    state = torch.zeros(batch, dim, state_len)
    steps = [torch.from_dlpack(ops.causal_conv1d_update(x[:, :, t], state, weight, bias, "silu"))
             for t in range(length)]
    assert rel_l2(torch.stack(steps, dim=-1), full) < F32_TOL
    # The state holds the last state_len inputs, oldest first, as transformers' cache does.
    assert torch.equal(state, x[:, :, length - state_len:])


def test_causal_conv1d_update_matches_transformers_and_takes_several_steps():
    batch, dim, width = 2, 6, 4
    state = torch.randn(batch, dim, width)
    theirs = state.clone()
    x, weight, bias = torch.randn(batch, dim, 3), torch.randn(dim, width), torch.randn(dim)
    want = modeling_mamba.causal_conv1d_update(x, theirs, weight, bias, activation="silu")
    got = ops.causal_conv1d_update(x, state, weight, bias, "silu")
    assert rel_l2(got, want) < F32_TOL
    assert torch.equal(state, theirs)


def test_scan_errors_name_the_argument_and_the_expectation():
    u, delta, A, B, C, *_ = scan_inputs(1, 12, 4, 5)
    with pytest.raises(hfport.errors.Error,
                       match=r"selective_scan: A must be \[dim, N\] = \[12, 4\], got \[4, 12\]"):
        ops.selective_scan(u, delta, A.t(), B, C)
    with pytest.raises(hfport.errors.Error, match=r"selective_scan: B must be \[dim, N\], "
                                                  r"\[batch, N, L\] or \[batch, G, N, L\]"):
        ops.selective_scan(u, delta, A, B[0, 0], C)
    with pytest.raises(hfport.errors.Error, match=r"selective_scan: C must be the shape of B"):
        ops.selective_scan(u, delta, A, B, C[:, :3])
    with pytest.raises(hfport.errors.Error,
                       match=r"selective_scan: delta must have the dtype of u \(F32\), got BF16"):
        ops.selective_scan(u, delta.bfloat16(), A, B, C)
    with pytest.raises(hfport.errors.Error, match=r"G = 5 must divide dim = 12"):
        ops.selective_scan(u, delta, A, torch.randn(1, 5, 4, 5), torch.randn(1, 5, 4, 5))
    with pytest.raises(hfport.errors.Error, match=r"selective_scan: u must have dtype F32, F16 or "
                                                  r"BF16, got I64"):
        ops.selective_scan(u.long(), delta, A, B, C)
    with pytest.raises(hfport.errors.DLPackError, match=r"argument 'u'"):
        ops.selective_scan([1.0], delta, A, B, C)
    with pytest.raises(hfport.errors.Error,
                       match=r"selective_state_update: B must be \[batch, N\] = \[1, 4\]"):
        ops.selective_state_update(torch.zeros(1, 12, 4), u[:, :, 0], delta[:, :, 0], A,
                                   torch.randn(1, 5), torch.randn(1, 5))


def test_conv_errors_name_the_argument_and_the_expectation():
    x, weight = torch.randn(1, 6, 5), torch.randn(6, 4)
    with pytest.raises(hfport.errors.Error,
                       match=r"causal_conv1d: weight must be \[dim, width\] = \[6, 4\], "
                             r"got \[5, 4\]"):
        ops.causal_conv1d(x, weight[:5])
    with pytest.raises(hfport.errors.Error, match=r"activation must be None, \"silu\""):
        ops.causal_conv1d(x, weight, activation="relu")
    with pytest.raises(hfport.errors.Error, match=r"S >= width - 1 = 3 columns, got \[1, 6, 2\]"):
        ops.causal_conv1d_update(x[:, :, 0], torch.zeros(1, 6, 2), weight)
