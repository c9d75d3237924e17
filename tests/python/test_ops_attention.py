"""hfport.ops.attention against torch's scaled_dot_product_attention and transformers' eager
attention (the function LLaMA, Mistral and the other decoders call), on fresh random inputs.

Covers causal and not, key padding, sliding windows shorter than the sequence, GQA 8/2 and MQA,
S in {1, 17, 1000}, D in {64, 80, 128}, both layouts, f32/f16/bf16, decode (Sq != Sk, the
queries being the last positions), logsumexp, fully masked rows, and the error messages.
"""

from __future__ import annotations

import math

import hfport
import pytest
import torch
import torch.nn.functional as F
from hfport import ops
from torch import nn
from transformers.models.llama.modeling_llama import eager_attention_forward

TOL = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 1e-2}


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    want = want.double()
    return ((got.double() - want).norm() / want.norm()).item()


def run(q, k, v, **kwargs) -> torch.Tensor:
    out = ops.attention(q, k, v, **kwargs)
    if kwargs.get("return_lse"):
        return torch.from_dlpack(out[0]), torch.from_dlpack(out[1])
    return torch.from_dlpack(out)


def explicit_mask(sq: int, sk: int, causal: bool, window: int | None) -> torch.Tensor:
    """Boolean [Sq, Sk], True = attend, with the queries at the last Sq of Sk positions."""
    q_pos = torch.arange(sk - sq, sk)[:, None]
    k_pos = torch.arange(sk)[None, :]
    keep = torch.ones(sq, sk, dtype=torch.bool)
    if causal:
        keep &= k_pos <= q_pos
    if window is not None:
        keep &= q_pos - k_pos < window
    return keep


def sdpa(q, k, v, mask=None, scale=None, dtype=torch.float64) -> torch.Tensor:
    """torch SDPA on upcasts to `dtype` (float64 here, float32 in the CUDA tests) with repeat_kv
    done by hand (GQA); bhsd in and out, on the inputs' device."""
    rep = q.shape[1] // k.shape[1]
    k = k.to(dtype).repeat_interleave(rep, dim=1)
    v = v.to(dtype).repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q.to(dtype), k, v, attn_mask=mask, scale=scale)


CASES = [
    # B, Hq, Hkv, Sq, Sk, D, causal, window, padding
    (2, 8, 2, 17, 17, 64, True, None, False),
    (1, 8, 8, 17, 17, 80, False, None, True),
    (2, 4, 1, 17, 17, 128, True, 5, False),
    (1, 2, 2, 1000, 1000, 64, True, None, True),
    (1, 1, 1, 1000, 1000, 80, True, 300, False),
    (1, 2, 1, 1000, 1000, 128, False, None, False),
    (2, 8, 2, 1, 1, 64, True, None, False),
    (2, 8, 2, 1, 33, 64, True, None, True),      # decode: one query against a cache
    (1, 4, 1, 5, 300, 80, True, 64, False),      # decode of 5 with a window
    (1, 3, 3, 130, 61, 33, False, None, False),  # Sq > Sk, odd D
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "B{}H{}/{}S{}x{}D{}{}{}{}".format(
    *c[:6], "c" if c[6] else "", f"w{c[7]}" if c[7] else "", "p" if c[8] else ""))
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_matches_sdpa(case, layout) -> None:
    b, hq, hkv, sq, sk, d, causal, window, padding = case
    q = torch.randn(b, hq, sq, d)
    k = torch.randn(b, hkv, sk, d)
    v = torch.randn(b, hkv, sk, d)
    keep = explicit_mask(sq, sk, causal, window)[None, None].expand(b, 1, sq, sk).clone()
    pad = None
    if padding:
        pad = torch.ones(b, sk, dtype=torch.int64)
        pad[0, : sk // 3] = 0  # left padding of the first sequence
        keep &= pad.bool()[:, None, None, :]
    want = sdpa(q, k, v, mask=keep)
    seen = keep.any(-1, keepdim=True).expand(b, hq, sq, 1)  # rows that see some key
    want = torch.where(seen, want, torch.zeros(()))
    args = (q, k, v) if layout == "bhsd" else tuple(t.transpose(1, 2).contiguous() for t in (q, k, v))
    got = run(*args, causal=causal, sliding_window=window, key_padding_mask=pad, layout=layout)
    if layout == "bshd":
        assert got.shape == (b, sq, hq, d)
        got = got.transpose(1, 2)
    assert got.shape == (b, hq, sq, d) and got.dtype == torch.float32
    assert rel_err(got, want) < TOL[torch.float32]
    assert torch.all(got[~seen.expand_as(got)] == 0)


@pytest.mark.parametrize("s", [1, 17, 64, 129])
def test_causal_equals_sdpa_is_causal(s: int) -> None:
    q, k, v = torch.randn(1, 4, s, 64), torch.randn(1, 2, s, 64), torch.randn(1, 2, s, 64)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert rel_err(run(q, k, v, causal=True), want) < TOL[torch.float32]


def test_decode_alignment_is_bottom_right_not_sdpa_top_left() -> None:
    """With Sq < Sk, query i sits at position Sk - Sq + i (a cache); SDPA's is_causal would put it
    at position i. The explicit-mask reference is right; SDPA is_causal differs."""
    q, k, v = torch.randn(1, 2, 4, 64), torch.randn(1, 2, 20, 64), torch.randn(1, 2, 20, 64)
    got = run(q, k, v, causal=True)
    want = sdpa(q, k, v, mask=explicit_mask(4, 20, True, None))
    assert rel_err(got, want) < TOL[torch.float32]
    top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert rel_err(got, top_left) > 1e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_half_precision_inputs(dtype, layout) -> None:
    q = torch.randn(2, 8, 37, 80).to(dtype)
    k = torch.randn(2, 2, 37, 80).to(dtype)
    v = torch.randn(2, 2, 37, 80).to(dtype)
    want = sdpa(q, k, v, mask=explicit_mask(37, 37, True, None))
    args = (q, k, v) if layout == "bhsd" else tuple(t.transpose(1, 2) for t in (q, k, v))
    got = run(*args, causal=True, layout=layout)
    assert got.dtype == dtype
    if layout == "bshd":
        got = got.transpose(1, 2)
    assert rel_err(got, want) < TOL[dtype]


@pytest.mark.parametrize("hkv", [2, 1])
def test_matches_transformers_eager_attention(hkv: int) -> None:
    """transformers' eager_attention_forward with its additive causal + padding mask."""
    b, hq, s, d = 2, 8, 23, 64
    q, k, v = torch.randn(b, hq, s, d), torch.randn(b, hkv, s, d), torch.randn(b, hkv, s, d)
    pad = torch.ones(b, s, dtype=torch.int64)
    pad[1, :4] = 0
    keep = explicit_mask(s, s, True, None)[None, None] & pad.bool()[:, None, None, :]
    additive = torch.zeros(b, 1, s, s).masked_fill(~keep, torch.finfo(torch.float32).min)
    module = nn.Module()
    module.num_key_value_groups = hq // hkv
    module.training = False
    want, _ = eager_attention_forward(module, q, k, v, additive, scaling=d**-0.5)  # [b, s, h, d]
    got = run(q, k, v, causal=True, key_padding_mask=pad, layout="bhsd").transpose(1, 2)
    seen = keep.any(-1)[:, 0]  # [b, s]; the padded queries of sequence 1 see nothing
    assert rel_err(got[seen], want[seen]) < TOL[torch.float32]
    # the same through the additive float mask (a finite minimum, not -inf)
    got_additive = run(q, k, v, attn_mask=additive).transpose(1, 2)
    assert rel_err(got_additive[seen], want[seen]) < TOL[torch.float32]


def test_boolean_and_float_masks_broadcast() -> None:
    q, k, v = torch.randn(2, 4, 9, 64), torch.randn(2, 4, 12, 64), torch.randn(2, 4, 12, 64)
    keep = torch.rand(9, 12) > 0.3
    keep[:, 0] = True
    bias = torch.randn(2, 1, 9, 12)
    assert rel_err(run(q, k, v, attn_mask=keep), sdpa(q, k, v, mask=keep)) < 1e-5
    assert rel_err(run(q, k, v, attn_mask=bias), sdpa(q, k, v, mask=bias.double())) < 1e-5
    assert rel_err(run(q, k, v, attn_mask=bias.bfloat16()),
                   sdpa(q, k, v, mask=bias.bfloat16().double())) < 1e-5


def test_scale_and_lse() -> None:
    q, k, v = torch.randn(2, 4, 31, 64), torch.randn(2, 2, 45, 64), torch.randn(2, 2, 45, 64)
    scale = 0.3
    keep = explicit_mask(31, 45, True, 20)
    out, lse = run(q, k, v, causal=True, sliding_window=20, scale=scale, return_lse=True)
    assert lse.shape == (2, 4, 31) and lse.dtype == torch.float32
    assert rel_err(out, sdpa(q, k, v, mask=keep, scale=scale)) < 1e-5
    scores = q.double() @ k.double().repeat_interleave(2, dim=1).transpose(-1, -2) * scale
    want_lse = torch.logsumexp(scores.masked_fill(~keep, -math.inf), dim=-1)
    assert rel_err(lse, want_lse) < 1e-6


def test_fully_masked_rows_are_zero_with_lse_minus_inf() -> None:
    q, k, v = torch.randn(1, 2, 4, 64), torch.randn(1, 2, 6, 64), torch.randn(1, 2, 6, 64)
    keep = torch.ones(4, 6, dtype=torch.bool)
    keep[2] = False
    out, lse = run(q, k, v, attn_mask=keep, return_lse=True)
    assert torch.all(out[:, :, 2] == 0) and torch.all(lse[:, :, 2] == -math.inf)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # torch 2.x: zeros too
    assert rel_err(out, want) < 1e-5


def test_accepts_numpy_and_non_contiguous_last_dim() -> None:
    q, k, v = torch.randn(1, 2, 8, 64), torch.randn(1, 2, 8, 64), torch.randn(1, 2, 8, 64)
    want = sdpa(q, k, v)
    assert rel_err(run(q.numpy(), k.numpy(), v.numpy()), want) < 1e-5
    strided = torch.randn(1, 2, 8, 128)[..., ::2]
    strided[...] = q
    assert rel_err(run(strided, k, v), want) < 1e-5


@pytest.mark.parametrize("kwargs,message", [
    ({"k": torch.randn(1, 3, 8, 64), "v": torch.randn(1, 3, 8, 64)},
     "k has 3 heads, which does not divide q's 8 heads"),
    ({"k": torch.randn(1, 2, 8, 32)}, "k has head_dim 32, q has 64"),
    ({"q": torch.randn(8, 8, 64)}, "q must be 4-D \\[batch, heads, seq, head_dim\\]"),
    ({"q": torch.randn(1, 8, 8, 64).double()}, "q must be F32, F16 or BF16, got F64"),
    ({"v": torch.randn(1, 2, 8, 64).half()}, "q, k and v must share one dtype"),
    ({"key_padding_mask": torch.ones(1, 7, dtype=torch.bool)},
     "key_padding_mask must be \\[batch, kv_len\\] = \\[1, 8\\], got shape \\[1, 7\\]"),
    ({"attn_mask": torch.ones(3, 8, dtype=torch.bool)},
     "attn_mask must broadcast to \\[batch, heads, q_len, kv_len\\] = \\[1, 8, 8, 8\\], got shape \\[3, 8\\]"),
    ({"sliding_window": 0}, "sliding_window must be >= 1, got 0"),
    ({"layout": "sbhd"}, "layout must be 'bhsd'"),
])
def test_errors_name_the_argument(kwargs, message) -> None:
    args = {"q": torch.randn(1, 8, 8, 64), "k": torch.randn(1, 2, 8, 64),
            "v": torch.randn(1, 2, 8, 64)}
    for name in ("q", "k", "v"):
        if name in kwargs:
            args[name] = kwargs.pop(name)
    with pytest.raises(hfport.errors.Error, match=message):
        ops.attention(args["q"], args["k"], args["v"], **kwargs)


def test_not_a_tensor() -> None:
    with pytest.raises(hfport.errors.DLPackError, match="argument 'k' must be an hfport.Tensor"):
        ops.attention(torch.randn(1, 1, 2, 8), [1, 2], torch.randn(1, 1, 2, 8))
