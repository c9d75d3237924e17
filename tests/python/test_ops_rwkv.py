"""hfport.ops rwkv_wkv and rwkv_wkv_update (RWKV-4's time-mix recurrence) against the sums written
out in float64 here and against transformers' rwkv_linear_attention_cpu (the path a CPU runs, and
the form its CUDA kernel computes). Inputs are fresh random values each run."""

from __future__ import annotations

import pytest
import torch
from hfport import ops
from hfport.errors import ArgumentError
from transformers.models.rwkv import modeling_rwkv

F32_TOL = 1e-5
BF16_TOL = 1e-2


def rel_l2(got, want: torch.Tensor) -> float:
    got = torch.from_dlpack(got) if not isinstance(got, torch.Tensor) else got
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm()).item()


def wkv_sums(w, u, k, v):
    """y_t = (sum_{i<t} e^{(t-1-i) w' + k_i} v_i + e^{u + k_t} v_t) / (the same with v = 1),
    w' = -exp(w), in float64 straight from the definition (no state, no max tracking)."""
    w, u, k, v = (x.double() for x in (w, u, k, v))
    length = k.shape[1]
    decay = -torch.exp(w)
    ys = []
    for t in range(length):
        i = torch.arange(t, dtype=torch.float64)
        weights = torch.exp((t - 1 - i)[None, :, None] * decay + k[:, :t])  # [batch, t, C]
        now = torch.exp(u + k[:, t])
        ys.append(((weights * v[:, :t]).sum(1) + now * v[:, t]) / (weights.sum(1) + now))
    return torch.stack(ys, dim=1)


def inputs(batch, length, channels, dtype=torch.float32):
    w = torch.randn(channels) - 1.0
    u = torch.randn(channels) * 0.5
    k = torch.randn(batch, length, channels).to(dtype)
    v = torch.randn(batch, length, channels).to(dtype)
    return w, u, k, v


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 17, 75), (1, 40, 130)])
def test_wkv_matches_the_sums_and_transformers(shape):
    w, u, k, v = inputs(*shape)
    y, (num, den, mx) = ops.rwkv_wkv(w, u, k, v)
    assert rel_l2(y, wkv_sums(w, u, k, v)) < F32_TOL
    with torch.no_grad():
        want, (want_num, want_den, want_max) = modeling_rwkv.rwkv_linear_attention_cpu(
            w, u, k, v, return_state=True)
    assert rel_l2(y, want) < F32_TOL
    for got, expected in ((num, want_num), (den, want_den), (mx, want_max)):
        assert rel_l2(got, expected) < F32_TOL


def test_wkv_continues_from_a_state_like_transformers():
    w, u, k, v = inputs(2, 12, 40)
    with torch.no_grad():
        _, state = modeling_rwkv.rwkv_linear_attention_cpu(w, u, k[:, :5], v[:, :5],
                                                           return_state=True)
        want, want_state = modeling_rwkv.rwkv_linear_attention_cpu(w, u, k[:, 5:], v[:, 5:],
                                                                   state=state)
    y, got_state = ops.rwkv_wkv(w, u, k[:, 5:], v[:, 5:], state)
    assert rel_l2(y, want) < F32_TOL
    for got, expected in zip(got_state, want_state):
        assert rel_l2(got, expected) < F32_TOL
    # And equals one call over the whole sequence.
    whole, _ = ops.rwkv_wkv(w, u, k, v)
    assert rel_l2(y, torch.from_dlpack(whole)[:, 5:]) < F32_TOL


def test_update_steps_equal_one_call():
    w, u, k, v = inputs(3, 9, 70)
    whole, whole_state = ops.rwkv_wkv(w, u, k, v)
    state = tuple(torch.from_dlpack(s).clone() for s in ops.rwkv_wkv(w, u, k[:, :0], v[:, :0])[1])
    steps = [torch.from_dlpack(ops.rwkv_wkv_update(state, w, u, k[:, t], v[:, t]))
             for t in range(9)]
    assert torch.equal(torch.stack(steps, dim=1), torch.from_dlpack(whole))
    for got, expected in zip(state, whole_state):
        assert torch.equal(got, torch.from_dlpack(expected))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs(dtype):
    w, u, k, v = inputs(2, 10, 33, dtype)
    y, _ = ops.rwkv_wkv(w, u, k, v)
    assert torch.from_dlpack(y).dtype == dtype
    assert rel_l2(y, wkv_sums(w, u, k, v)) < BF16_TOL


def test_mask_skips_steps():
    # A left-padded row gives, at its tokens, what the row alone gives.
    w, u, k, v = inputs(1, 10, 20)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1]])
    y, state = ops.rwkv_wkv(w, u, k, v, mask=mask)
    alone, alone_state = ops.rwkv_wkv(w, u, k[:, 3:], v[:, 3:])
    assert torch.equal(torch.from_dlpack(y)[:, 3:], torch.from_dlpack(alone))
    assert torch.equal(torch.from_dlpack(y)[:, :3], torch.zeros(1, 3, 20))
    for got, expected in zip(state, alone_state):
        assert torch.equal(torch.from_dlpack(got), torch.from_dlpack(expected))


def test_errors_name_the_argument():
    w, u, k, v = inputs(1, 4, 6)
    with pytest.raises(ArgumentError, match=r"rwkv_wkv: u must be \[C\] = \[6\], got \[5\]"):
        ops.rwkv_wkv(w, u[:5], k, v)
    with pytest.raises(ArgumentError, match="state must be None or \\(num, den, max\\)"):
        ops.rwkv_wkv(w, u, k, v, (torch.zeros(1, 6),))
    with pytest.raises(ArgumentError, match=r"state max must be \[batch, C\] = \[1, 6\]"):
        ops.rwkv_wkv(w, u, k, v, (torch.zeros(1, 6), torch.zeros(1, 6), torch.zeros(2, 6)))
    with pytest.raises(ArgumentError, match="mask must hold 0 and 1 only, got 2"):
        ops.rwkv_wkv(w, u, k, v, mask=torch.tensor([[1, 2, 1, 1]]))
    with pytest.raises(ArgumentError, match="state num is updated in place and must be a "
                                            "contiguous F32 tensor"):
        state = (torch.zeros(1, 12)[:, ::2], torch.zeros(1, 6), torch.zeros(1, 6))
        ops.rwkv_wkv_update(state, w, u, k[:, 0], v[:, 0])
