"""hfport.ops rwkv_wkv / rwkv_wkv_update, ssd_scan / ssd_state_update and rms_norm_gated on CUDA
tensors (kernels/cuda/rwkv_wkv.cu, ssd_scan.cu, norm.cu) against the CPU ops on the same values,
against the float64 references of test_ops_rwkv.py / test_ops_ssd.py, and against transformers'
own torch code run on CUDA (rwkv_linear_attention_cpu, mamba2_chunk_scan,
mamba2_selective_state_update, MambaRMSNormGated), as the CPU tests do.

Sizes are odd on purpose: a WKV channel count that is not a multiple of the block, an SSD chunk
that does not divide the length (the CUDA scan ignores chunk_size; the CPU one does not), head_dim
not a power of two, n_groups > 1, d_state below, at and above the warp's 32 lanes, initial states,
a state update chained over L steps. Outputs are poisoned with NaN so that an element a kernel
forgets to write shows. Everything skips without CUDA, saying which part is missing.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from cuda_testing import TOLERANCE, needs_cuda, poisoned, relative_l2
from hfport import ops
from hfport.errors import ArgumentError
from test_ops_rwkv import wkv_sums
from test_ops_ssd import ssd_reference
from transformers.models.mamba2 import modeling_mamba2
from transformers.models.rwkv import modeling_rwkv

pytestmark = needs_cuda

HALF = [torch.bfloat16, torch.float16]


def t(x):
    """An hfport result (or a tuple of them) as torch."""
    if isinstance(x, (tuple, list)):
        return tuple(t(e) for e in x)
    return x if isinstance(x, torch.Tensor) else torch.from_dlpack(x)


def cpu(x):
    return None if x is None else x.cpu()


def gpu(x):
    return None if x is None else x.cuda()


def assert_written(*tensors):
    for x in tensors:
        assert not torch.isnan(x).any(), "an output element was never written"


# ---- RWKV WKV ----

def wkv_inputs(batch, length, channels, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(channels, generator=g) - 1.0
    u = torch.randn(channels, generator=g) * 0.5
    k = torch.randn(batch, length, channels, generator=g).to(dtype)
    v = torch.randn(batch, length, channels, generator=g).to(dtype)
    return w, u, k, v


def wkv_cuda(w, u, k, v, state=None, mask=None):
    out = poisoned(tuple(k.shape), k.dtype) if k.numel() else None  # an empty one has no address
    y, st = ops.rwkv_wkv(gpu(w), gpu(u), gpu(k), gpu(v),
                         None if state is None else tuple(gpu(s) for s in state),
                         mask=gpu(mask), out=out)
    y, st = t(y), t(st)
    assert out is None or y.data_ptr() == out.data_ptr()
    assert y.dtype == k.dtype and y.shape == k.shape
    assert all(s.device.type == "cuda" and s.dtype == torch.float32 for s in st)
    assert_written(y, *st)
    return y, st


@pytest.mark.parametrize("dtype", [torch.float32, *HALF])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 17, 75), (3, 40, 130), (2, 64, 769)])
def test_wkv_matches_cpu_and_sums(shape, dtype):
    w, u, k, v = wkv_inputs(*shape, dtype=dtype)
    y, state = wkv_cuda(w, u, k, v)
    cpu_y, cpu_state = t(ops.rwkv_wkv(w, u, k, v))
    tol = TOLERANCE[dtype]
    assert relative_l2(y, cpu_y) < tol
    assert relative_l2(y, wkv_sums(w, u, k, v)) < tol
    for got, want in zip(state, cpu_state):
        assert relative_l2(got, want) < 1e-5  # f32 state from the same widened inputs


def test_wkv_matches_transformers_on_cuda():
    w, u, k, v = wkv_inputs(2, 33, 90)
    with torch.no_grad():
        want, want_state = modeling_rwkv.rwkv_linear_attention_cpu(
            gpu(w), gpu(u), gpu(k), gpu(v), return_state=True)
    y, state = wkv_cuda(w, u, k, v)
    assert relative_l2(y, want) < 1e-5
    for got, expected in zip(state, want_state):
        assert relative_l2(got, expected) < 1e-5


def test_wkv_continues_from_a_state():
    w, u, k, v = wkv_inputs(2, 12, 40, seed=1)
    _, first = wkv_cuda(w, u, k[:, :5], v[:, :5])
    y, state = wkv_cuda(w, u, k[:, 5:], v[:, 5:], state=first)
    whole, whole_state = wkv_cuda(w, u, k, v)
    assert relative_l2(y, whole[:, 5:]) < 1e-5
    for got, want in zip(state, whole_state):
        assert relative_l2(got, want) < 1e-5
    cpu_y, cpu_state = t(ops.rwkv_wkv(w, u, k[:, 5:], v[:, 5:],
                                      tuple(s.cpu() for s in first)))
    assert relative_l2(y, cpu_y) < 1e-5
    for got, want in zip(state, cpu_state):
        assert relative_l2(got, want) < 1e-5


def test_wkv_update_steps_equal_one_call():
    w, u, k, v = wkv_inputs(3, 9, 70, seed=2)
    whole, whole_state = wkv_cuda(w, u, k, v)
    state = tuple(s.clone() for s in wkv_cuda(w, u, k[:, :0], v[:, :0])[1])
    wg, ug, kg, vg = gpu(w), gpu(u), gpu(k), gpu(v)
    steps = [t(ops.rwkv_wkv_update(state, wg, ug, kg[:, i], vg[:, i])) for i in range(9)]
    # The same kernel, the same steps in the same order: equal to the bit.
    assert torch.equal(torch.stack(steps, dim=1), whole)
    for got, want in zip(state, whole_state):
        assert torch.equal(got, want)


def test_wkv_strided_inputs_and_mask():
    w, u, k, v = wkv_inputs(2, 10, 20, seed=3)
    # k and v as [batch, L, C] views of [batch, C, L] storage: channel stride L.
    k_t = gpu(k).transpose(1, 2).contiguous().transpose(1, 2)
    v_t = gpu(v).transpose(1, 2).contiguous().transpose(1, 2)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1], [1] * 10], dtype=torch.int64)
    y, state = wkv_cuda(w, u, k_t, v_t, mask=mask)
    cpu_y, cpu_state = t(ops.rwkv_wkv(w, u, k, v, mask=mask))
    assert relative_l2(y, cpu_y) < 1e-5
    assert torch.equal(y[0, :3].cpu(), torch.zeros(3, 20))
    for got, want in zip(state, cpu_state):
        assert relative_l2(got, want) < 1e-5
    alone, _ = wkv_cuda(w, u, k[:1, 3:], v[:1, 3:])
    assert relative_l2(y[:1, 3:], alone) < 1e-6


def test_wkv_errors_match_the_cpu():
    w, u, k, v = (gpu(x) for x in wkv_inputs(1, 4, 6))
    with pytest.raises(ArgumentError, match=r"rwkv_wkv: u must be \[C\] = \[6\], got \[5\]"):
        ops.rwkv_wkv(w, u[:5], k, v)
    with pytest.raises(ArgumentError, match="mask must hold 0 and 1 only, got 2"):
        ops.rwkv_wkv(w, u, k, v, mask=torch.tensor([[1, 2, 1, 1]], device="cuda"))
    with pytest.raises(ArgumentError, match="state num is updated in place and must be a "
                                            "contiguous F32 tensor"):
        state = (torch.zeros(1, 12, device="cuda")[:, ::2], torch.zeros(1, 6, device="cuda"),
                 torch.zeros(1, 6, device="cuda"))
        ops.rwkv_wkv_update(state, w, u, k[:, 0], v[:, 0])


# ---- Mamba-2 SSD ----

def ssd_inputs(batch, length, heads, head_dim, n, groups, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, heads, head_dim, generator=g).to(dtype)
    dt = (torch.randn(batch, length, heads, generator=g) * 0.5 - 1.0).to(dtype)
    A = -torch.exp(torch.randn(heads, generator=g) * 0.5)
    B = torch.randn(batch, length, groups, n, generator=g).to(dtype)
    C = torch.randn(batch, length, groups, n, generator=g).to(dtype)
    D = torch.randn(heads, generator=g)
    dt_bias = torch.randn(heads, generator=g) * 0.3
    initial = torch.randn(batch, heads, head_dim, n, generator=g)
    return x, dt, A, B, C, D, dt_bias, initial


def ssd_cuda(x, dt, A, B, C, **kw):
    out = poisoned(tuple(x.shape), x.dtype) if x.numel() else None  # an empty one has no address
    for name in ("D", "dt_bias", "initial_states"):
        kw[name] = gpu(kw.get(name))
    y, final = ops.ssd_scan(gpu(x), gpu(dt), gpu(A), gpu(B), gpu(C), return_final_states=True,
                            out=out, **kw)
    y, final = t(y), t(final)
    assert out is None or y.data_ptr() == out.data_ptr()
    assert y.dtype == x.dtype and y.shape == x.shape
    assert final.device.type == "cuda" and final.dtype == torch.float32
    assert_written(y, final)
    return y, final


SSD_SHAPES = [
    # batch, L, H, P, N, G, chunk
    (1, 1, 1, 1, 1, 1, 4),
    (2, 37, 4, 24, 16, 1, 8),     # chunk 8 does not divide 37
    (1, 50, 6, 10, 40, 3, 16),    # P 10: not a power of two; N 40: past one warp; 3 groups
    (2, 33, 8, 20, 32, 2, 256),   # chunk larger than L; N exactly one warp
    (1, 70, 4, 64, 128, 2, 64),   # Mamba-2-130M's P and N
]


@pytest.mark.parametrize("shape", SSD_SHAPES, ids=[str(s) for s in SSD_SHAPES])
def test_ssd_scan_matches_cpu_and_float64(shape):
    batch, length, heads, head_dim, n, groups, chunk = shape
    x, dt, A, B, C, D, dt_bias, initial = ssd_inputs(batch, length, heads, head_dim, n, groups)
    kw = dict(chunk_size=chunk, D=D, dt_bias=dt_bias, dt_softplus=True, initial_states=initial)
    y, final = ssd_cuda(x, dt, A, B, C, **kw)
    cpu_y, cpu_final = t(ops.ssd_scan(x, dt, A, B, C, return_final_states=True, **kw))
    want_y, want_final = ssd_reference(x, dt, A, B, C, D, dt_bias, True, initial=initial)
    assert relative_l2(y, cpu_y) < 1e-5
    assert relative_l2(final, cpu_final) < 1e-5
    assert relative_l2(y, want_y) < 1e-5
    assert relative_l2(final, want_final) < 1e-5


@pytest.mark.parametrize("dtype", HALF)
def test_ssd_scan_half_inputs(dtype):
    x, dt, A, B, C, D, dt_bias, _ = ssd_inputs(2, 21, 4, 12, 8, 2, dtype=dtype, seed=1)
    y, _ = ssd_cuda(x, dt, A, B, C, chunk_size=5, D=D, dt_bias=dt_bias, dt_softplus=True)
    cpu_y = t(ops.ssd_scan(x, dt, A, B, C, chunk_size=5, D=D, dt_bias=dt_bias, dt_softplus=True))
    want, _ = ssd_reference(x, dt, A, B, C, D, dt_bias, True)
    assert relative_l2(y, cpu_y) < TOLERANCE[dtype]
    assert relative_l2(y, want) < TOLERANCE[dtype]


def test_ssd_scan_without_options_and_strided_inputs():
    x, dt, A, B, C, _, _, _ = ssd_inputs(2, 19, 6, 10, 8, 2, seed=2)
    dt = dt.abs() + 0.05  # no softplus: keep dt positive
    # x as a view of [batch, H, P, L] storage; B and C of [batch, G, N, L] storage.
    x_s = gpu(x).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    B_s = gpu(B).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    C_s = gpu(C).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    y, final = ssd_cuda(x_s, dt, A, B_s, C_s)
    want_y, want_final = ssd_reference(x, dt, A, B, C)
    assert relative_l2(y, want_y) < 1e-5
    assert relative_l2(final, want_final) < 1e-5
    y_only = t(ops.ssd_scan(gpu(x), gpu(dt), gpu(A), gpu(B), gpu(C)))
    assert relative_l2(y_only, want_y) < 1e-5


def test_ssd_scan_empty_sequence_keeps_the_initial_state():
    x, dt, A, B, C, D, _, initial = ssd_inputs(2, 3, 4, 6, 5, 2, seed=3)
    y, final = ssd_cuda(x[:, :0], dt[:, :0], A, B[:, :0], C[:, :0], D=D, initial_states=initial)
    assert y.shape == (2, 0, 4, 6)
    assert torch.equal(final.cpu(), initial)


@pytest.mark.parametrize("limit", [(0.0, math.inf), (0.2, 0.6)])
def test_ssd_scan_equals_transformers_chunk_scan_on_cuda(limit):
    x, dt, A, B, C, D, dt_bias, initial = (gpu(v) for v in ssd_inputs(2, 45, 6, 10, 8, 2, seed=4))
    with torch.no_grad():
        want, want_final = modeling_mamba2.mamba2_chunk_scan(
            x, dt, A, B, C, chunk_size=16, D=D, dt_bias=dt_bias, initial_states=initial,
            dt_softplus=True, dt_limit=limit, return_final_states=True)
    y, final = ssd_cuda(x, dt, A, B, C, chunk_size=16, D=D, dt_bias=dt_bias, dt_softplus=True,
                        dt_limit=limit, initial_states=initial)
    assert relative_l2(y, want) < 1e-5
    assert relative_l2(final, want_final) < 1e-5


def test_ssd_state_update_chained_equals_scan_cpu_and_transformers():
    batch, length, heads, head_dim, n, groups = 2, 9, 6, 10, 40, 3
    x, dt, A, B, C, D, dt_bias, initial = (gpu(v) for v in ssd_inputs(
        batch, length, heads, head_dim, n, groups, seed=5))
    y_scan, final = ssd_cuda(x, dt, A, B, C, chunk_size=4, D=D, dt_bias=dt_bias,
                             dt_softplus=True, initial_states=initial)
    state = initial.clone()
    cpu_state = initial.cpu()
    theirs = initial.clone()
    steps = []
    for i in range(length):
        out = poisoned((batch, heads, head_dim), x.dtype)
        y = t(ops.ssd_state_update(state, x[:, i], dt[:, i], A, B[:, i], C[:, i], D=D,
                                   dt_bias=dt_bias, dt_softplus=True, out=out))
        assert y.data_ptr() == out.data_ptr()
        assert_written(y)
        steps.append(y)
        cpu_y = t(ops.ssd_state_update(cpu_state, *(cpu(v) for v in (
            x[:, i], dt[:, i], A, B[:, i], C[:, i])), D=cpu(D), dt_bias=cpu(dt_bias),
            dt_softplus=True))
        assert relative_l2(y, cpu_y) < 1e-5, f"step {i}"
        with torch.no_grad():
            want = modeling_mamba2.mamba2_selective_state_update(
                theirs, x[:, i], dt[:, i, :, None].expand(-1, -1, head_dim),
                A[:, None, None].expand(-1, head_dim, n), B[:, i], C[:, i],
                D[:, None].expand(-1, head_dim), dt_bias=dt_bias[:, None].expand(-1, head_dim),
                dt_softplus=True)
        assert relative_l2(y, want) < 1e-5, f"step {i}"
    assert relative_l2(torch.stack(steps, dim=1), y_scan) < 1e-5
    assert relative_l2(state, final) < 1e-5
    assert relative_l2(state, cpu_state) < 1e-5
    assert relative_l2(state, theirs) < 1e-5


@pytest.mark.parametrize("state_dtype", [torch.float32, torch.bfloat16])
def test_ssd_state_update_strided_state_in_its_own_dtype(state_dtype):
    x, dt, A, B, C, D, dt_bias, initial = ssd_inputs(2, 1, 4, 12, 36, 2, seed=6)
    # The state as a [batch, H, P, N] view of [batch, H, N, P] storage.
    base = initial.to(state_dtype).transpose(2, 3).contiguous()
    before = base.clone().transpose(2, 3)
    state_gpu = gpu(base).transpose(2, 3)
    state_cpu = base.clone().transpose(2, 3)
    args = (x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0])
    y = t(ops.ssd_state_update(state_gpu, *(gpu(v) for v in args), D=gpu(D),
                               dt_bias=gpu(dt_bias), dt_softplus=True))
    cpu_y = t(ops.ssd_state_update(state_cpu, *args, D=D, dt_bias=dt_bias, dt_softplus=True))
    tol = TOLERANCE[state_dtype]
    assert relative_l2(y, cpu_y) < 1e-5  # y comes from the f32 state before rounding
    assert relative_l2(state_gpu, state_cpu) < tol
    assert not torch.equal(state_gpu.cpu(), before)  # it moved


def test_ssd_errors_match_the_cpu():
    x, dt, A, B, C, _, _, _ = (gpu(v) for v in ssd_inputs(1, 5, 4, 6, 3, 2))
    with pytest.raises(ArgumentError, match=r"ssd_scan: dt must be \[batch, L, H\] = \[1, 5, 4\], "
                                            r"got \[1, 5, 3\]"):
        ops.ssd_scan(x, dt[..., :3], A, B, C)
    with pytest.raises(ArgumentError, match="chunk_size must be >= 1, got 0"):
        ops.ssd_scan(x, dt, A, B, C, chunk_size=0)
    with pytest.raises(ArgumentError, match="dt_min = 1, dt_max = 0.5"):
        ops.ssd_scan(x, dt, A, B, C, dt_limit=(1.0, 0.5))
    with pytest.raises(ArgumentError, match="out shares memory with x"):
        ops.ssd_scan(x, dt, A, B, C, out=x)


# ---- Gated grouped RMSNorm ----

def gated_reference(x, weight, gate, eps, group_size):
    hidden = x.shape[-1]
    v = x.double() * (F.silu(gate.double()) if gate is not None else 1.0)
    size = group_size or hidden
    grouped = v.reshape(*x.shape[:-1], hidden // size, size)
    want = (grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + eps)).reshape(x.shape)
    return want * weight.double()


@pytest.mark.parametrize("dtype", [torch.float32, *HALF])
@pytest.mark.parametrize("hidden,group_size,with_gate", [
    (48, 0, True), (48, 12, True), (1000, 250, True), (4100, 0, True), (4100, 1025, False),
    (3, 1, True)])
def test_rms_norm_gated_matches_cpu_and_float64(hidden, group_size, with_gate, dtype):
    g = torch.Generator().manual_seed(hidden + group_size)
    x = torch.randn(3, 5, hidden, generator=g).to(dtype)
    gate = torch.randn(3, 5, hidden, generator=g).to(dtype) if with_gate else None
    weight = 1.0 + 0.2 * torch.randn(hidden, generator=g)
    out = poisoned(tuple(x.shape), dtype)
    y = t(ops.rms_norm_gated(gpu(x), gpu(weight), gpu(gate), eps=1e-5, group_size=group_size,
                             out=out))
    assert y.data_ptr() == out.data_ptr() and y.dtype == dtype
    assert_written(y)
    cpu_y = t(ops.rms_norm_gated(x, weight, gate, eps=1e-5, group_size=group_size))
    tol = TOLERANCE[dtype]
    assert relative_l2(y, cpu_y) < tol
    assert relative_l2(y, gated_reference(x, weight, gate, 1e-5, group_size)) < tol


def test_rms_norm_gated_matches_transformers_on_cuda():
    hidden = 96
    x = torch.randn(4, 7, hidden, device="cuda")
    gate = torch.randn(4, 7, hidden, device="cuda")
    norm = modeling_mamba2.MambaRMSNormGated(hidden, eps=1e-5).cuda()
    with torch.no_grad():
        norm.weight.copy_(1.0 + 0.2 * torch.randn(hidden))
        want = norm(x, gate)
    y = t(ops.rms_norm_gated(x, norm.weight.detach(), gate, eps=1e-5))
    assert relative_l2(y, want) < 1e-5


def test_rms_norm_gated_errors_match_the_cpu():
    with pytest.raises(ArgumentError, match="rms_norm_gated: group_size must be 0"):
        ops.rms_norm_gated(torch.randn(2, 8, device="cuda"), torch.ones(8, device="cuda"),
                           group_size=3)
