"""The CUDA flash attention kernel (csrc/kernels/cuda/flash_attention.cu, issue 7) through its test
hook `hfport._hfport._flash_attention_for_tests`, which runs that kernel or raises (no fallback to
another kernel) and writes into the `out` and `lse` the test hands it, poisoned with NaN first.

References, on the same f16/bf16 values upcast to float32: torch SDPA's math backend on CUDA (an
explicit boolean mask carries hfport's bottom-right causal alignment, the sliding window and the
key padding; GQA is repeated by hand) and hfport's CPU op, whose own tests pin it to float64.
Sizes follow the issue: S = 1, 17, 1000, 4097 at D = 80, decode (Sq = 1 against a cache), Sq > Sk,
every head dim the kernel is built for, GQA/MQA, key padding of each integer dtype, BSHD and
strided views. Every case runs twice and must give the same bits (no race between warps).

Skips without a CUDA build, a device hfport sees, or CUDA torch (the reason says which).
"""

from __future__ import annotations

import math

import hfport
import pytest
import torch
from cuda_testing import TOLERANCE, needs_cuda, poisoned, randn, relative_l2
from hfport.errors import ArgumentError
from test_ops_attention import explicit_mask, sdpa
from torch.nn.attention import SDPBackend, sdpa_kernel

pytestmark = needs_cuda

BF16, F16 = torch.bfloat16, torch.float16


def flash(q, k, v, *, layout="bhsd", **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel into NaN-poisoned out and lse; (out, lse)."""
    batch, heads, seq = (q.shape[0], q.shape[1], q.shape[2]) if layout == "bhsd" else (
        q.shape[0], q.shape[2], q.shape[1])
    out = poisoned((*q.shape[:-1], v.shape[-1]), q.dtype)
    lse = poisoned((batch, heads, seq), torch.float32)
    hfport._hfport._flash_attention_for_tests(q, k, v, out, lse, layout=layout, **kwargs)
    torch.cuda.synchronize()
    return out, lse


def keep_mask(batch, sq, sk, causal, window, key_padding) -> torch.Tensor:
    """Boolean [B, 1, Sq, Sk], True = attend, by ops/attention.h's rules (query i at
    position i + Sk - Sq)."""
    keep = explicit_mask(sq, sk, causal, window).expand(batch, 1, sq, sk).clone()
    if key_padding is not None:
        keep &= (key_padding.cpu() != 0)[:, None, None, :]
    return keep


def math_reference(q, k, v, *, layout, causal, sliding_window, key_padding_mask, scale):
    """torch SDPA's math backend in float32 on CUDA. A row that sees no key is NaN there; hfport
    gives zeros, so those rows are zeroed here (and checked on their own)."""
    def bhsd(t):
        return (t if layout == "bhsd" else t.transpose(1, 2)).float()
    qf, kf, vf = bhsd(q), bhsd(k), bhsd(v)
    keep = keep_mask(qf.shape[0], qf.shape[2], kf.shape[2], causal, sliding_window,
                     key_padding_mask).to(q.device)
    with sdpa_kernel(SDPBackend.MATH):
        out = sdpa(qf, kf, vf, keep, scale, dtype=torch.float32)
    out = torch.where(keep.any(-1, keepdim=True), out, torch.zeros_like(out))
    return out if layout == "bhsd" else out.transpose(1, 2)


def cpu_reference(q, k, v, *, key_padding_mask, **kwargs):
    pad = None if key_padding_mask is None else key_padding_mask.cpu()
    out, lse = hfport.ops.attention(q.float().cpu(), k.float().cpu(), v.float().cpu(),
                                    key_padding_mask=pad, return_lse=True, **kwargs)
    return torch.from_dlpack(out), torch.from_dlpack(lse)


def check(q, k, v, *, layout="bhsd", causal=False, sliding_window=None, key_padding_mask=None,
          scale=None) -> tuple[torch.Tensor, torch.Tensor]:
    kwargs = dict(layout=layout, causal=causal, sliding_window=sliding_window, scale=scale)
    out, lse = flash(q, k, v, key_padding_mask=key_padding_mask, **kwargs)
    assert not out.isnan().any(), "an output element was not written"
    assert not lse.isnan().any(), "an lse element was not written"
    tol = TOLERANCE[q.dtype]
    want, want_lse = cpu_reference(q, k, v, key_padding_mask=key_padding_mask, **kwargs)
    assert relative_l2(out, want) < tol
    sdpa_out = math_reference(q, k, v, key_padding_mask=key_padding_mask, **kwargs)
    assert relative_l2(out, sdpa_out) < tol

    lse = lse.cpu()
    seen = torch.isfinite(want_lse)
    assert torch.equal(torch.isfinite(lse), seen), "lse is -inf exactly where a row sees no key"
    assert (lse[~seen] == -math.inf).all()
    if seen.any():
        assert (lse[seen] - want_lse[seen]).abs().max() < 1e-3 * (1 + want_lse[seen].abs().max())
    unseen = ~seen if layout == "bhsd" else (~seen).transpose(1, 2)
    assert (out.cpu()[unseen] == 0).all(), "a row that sees no key is zeros"

    again, again_lse = flash(q, k, v, key_padding_mask=key_padding_mask, **kwargs)
    assert torch.equal(out, again) and torch.equal(lse, again_lse.cpu()), "runs differ"
    return out, lse


def qkv(batch, q_heads, kv_heads, sq, sk, dim, dtype, layout="bhsd"):
    def shape(heads, seq):
        return (batch, heads, seq, dim) if layout == "bhsd" else (batch, seq, heads, dim)
    return (randn(*shape(q_heads, sq), dtype=dtype), randn(*shape(kv_heads, sk), dtype=dtype),
            randn(*shape(kv_heads, sk), dtype=dtype))


@pytest.mark.parametrize("dtype", [BF16, F16])
@pytest.mark.parametrize("seq", [1, 17, 1000, 4097])
@pytest.mark.parametrize("causal", [False, True])
def test_issue_sizes(dtype, seq, causal):
    batch = 2 if seq < 1000 else 1
    check(*qkv(batch, 2, 2, seq, seq, 80, dtype), causal=causal)


@pytest.mark.parametrize("sq, sk", [(1, 1), (1, 17), (1, 1000), (1, 4097), (17, 1000)])
def test_decode_against_a_cache(sq, sk):
    check(*qkv(2, 8, 2, sq, sk, 128, BF16), causal=True)


def test_more_queries_than_keys_leaves_the_first_rows_empty():
    out, lse = check(*qkv(1, 2, 2, 1000, 17, 80, BF16), causal=True)
    assert (out[:, :, :983] == 0).all() and (lse[:, :, :983] == -math.inf).all()
    assert torch.isfinite(lse[:, :, 983:]).all()


@pytest.mark.parametrize("dim", [64, 80, 96, 128, 256])
@pytest.mark.parametrize("dtype", [BF16, F16])
@pytest.mark.parametrize("causal", [False, True])
def test_every_head_dim(dim, dtype, causal):
    check(*qkv(1, 4, 2, 333, 333, dim, dtype), causal=causal)


@pytest.mark.parametrize("kv_heads", [1, 2, 8])
def test_gqa_and_mqa(kv_heads):
    check(*qkv(2, 8, kv_heads, 257, 257, 64, BF16), causal=True)


@pytest.mark.parametrize("window", [1, 64, 300])
@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window(window, causal):
    check(*qkv(1, 4, 2, 1000, 1000, 128, BF16), causal=causal, sliding_window=window)
    check(*qkv(1, 4, 2, 1, 1000, 128, BF16), causal=causal, sliding_window=window)


@pytest.mark.parametrize("pad_dtype", [torch.bool, torch.uint8, torch.int8, torch.int32,
                                       torch.int64])
def test_key_padding(pad_dtype):
    q, k, v = qkv(3, 4, 2, 300, 300, 96, BF16)
    keep = torch.ones(3, 300, dtype=pad_dtype)
    keep[0, 250:] = 0  # right padding
    keep[1, :37] = 0   # left padding
    keep[2, :] = 0     # nothing to attend to: zeros, lse -inf
    out, lse = check(q, k, v, causal=True, key_padding_mask=keep.cuda())
    assert (out[2] == 0).all() and (lse[2] == -math.inf).all()
    check(q[:, :, :1], k, v, causal=False, key_padding_mask=keep[:, :].cuda().t().contiguous().t())


def test_bshd_layout_and_strided_views():
    batch, seq, heads, dim = 2, 1000, 4, 128
    fused = randn(batch, seq, 3, heads, dim, dtype=BF16)  # a fused qkv projection, viewed
    q, k, v = fused[:, :, 0], fused[:, :, 1], fused[:, :, 2]
    check(q, k, v, layout="bshd", causal=True)
    check(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout="bhsd", causal=True)


@pytest.mark.parametrize("scale", [0.3, -0.05])
def test_explicit_scale(scale):
    check(*qkv(1, 2, 2, 129, 129, 64, F16), causal=True, scale=scale)


def test_without_lse():
    q, k, v = qkv(1, 2, 2, 200, 200, 80, BF16)
    out = poisoned(q.shape, q.dtype)
    hfport._hfport._flash_attention_for_tests(q, k, v, out, causal=True)
    torch.cuda.synchronize()
    want, _ = cpu_reference(q, k, v, key_padding_mask=None, causal=True)
    assert relative_l2(out, want) < TOLERANCE[BF16]


def test_what_the_kernel_cannot_run_raises():
    q, k, v = qkv(1, 2, 2, 64, 64, 64, torch.float32)
    with pytest.raises(ArgumentError, match="F16 or BF16"):
        flash(q, k, v)
    q, k, v = qkv(1, 2, 2, 64, 64, 72, BF16)
    with pytest.raises(ArgumentError, match="head_dim must be 64, 80, 96, 128 or 256"):
        flash(q, k, v)
    wide = randn(1, 2, 64, 81, dtype=BF16)
    q = k = v = wide[..., 1:]  # D = 80, rows 2 bytes off a 16-byte boundary
    with pytest.raises(ArgumentError, match="16-byte"):
        flash(q, k, v)
