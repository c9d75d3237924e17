"""hfport.ops.attention on CUDA tensors against the CPU op on the same
values and against torch's SDPA math backend on CUDA, run on float32 upcasts of the inputs with an
explicit boolean mask (bottom-right causal alignment, sliding window, key padding).

Covers S in {1, 17, 1000}, D in {64, 80, 128}, f32/f16/bf16, causal and not, decode (Sq = 1
against a cache), GQA and MQA, sliding windows, key padding of every accepted dtype, bool and
additive masks, bhsd and bshd, a non-unit-stride last dimension, lse, fully masked rows, and the
device errors. The op allocates its own output (the binding takes no `out`), so poisoning the
output buffer is done in tests/cpp/test_cuda_attention.cpp, where the kernel's params take it.
Every test runs twice: with the dispatch's own choice (the flash kernel where it takes the call:
f16/bf16 at its head dims) and with HFPORT_CUDA_ATTENTION=simple (the simple kernel for all).
Skips without a CUDA build, a device, or a CUDA torch.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from cuda_testing import TOLERANCE, needs_cuda, randn, relative_l2
from hfport import ops
from hfport.errors import ArgumentError, DeviceError
from test_ops_attention import explicit_mask, sdpa

pytestmark = needs_cuda


@pytest.fixture(autouse=True, params=["dispatch", "simple"])
def cuda_attention_kernel(request, monkeypatch):
    """The kernel choice of ops/cuda/attention.cpp, read from the environment at every call."""
    if request.param == "simple":
        monkeypatch.setenv("HFPORT_CUDA_ATTENTION", "simple")
    else:
        monkeypatch.delenv("HFPORT_CUDA_ATTENTION", raising=False)
    return request.param


def run(q, k, v, **kwargs):
    result = ops.attention(q, k, v, **kwargs)
    if kwargs.get("return_lse"):
        return torch.from_dlpack(result[0]), torch.from_dlpack(result[1])
    return torch.from_dlpack(result)


def on_cpu(value):
    return value.cpu() if isinstance(value, torch.Tensor) else value


def run_on_cpu(q, k, v, **kwargs):
    """The CPU op on the same values (itself pinned to float64 by tests/cpp/test_attention.cpp)."""
    return run(*(t.cpu() for t in (q, k, v)), **{name: on_cpu(x) for name, x in kwargs.items()})


def sdpa_math(q, k, v, keep=None, scale=None) -> torch.Tensor:
    """torch SDPA's math backend on CUDA, float32 upcasts, repeat_kv by hand; bhsd in and out."""
    mask = None if keep is None else keep.cuda()
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        return sdpa(q, k, v, mask, scale, dtype=torch.float32)


CASES = [
    # B, Hq, Hkv, Sq, Sk, D, causal, window, padding
    (2, 8, 2, 17, 17, 64, True, None, False),
    (1, 8, 8, 17, 17, 80, False, None, True),
    (2, 4, 1, 17, 17, 128, True, 5, False),
    (1, 2, 2, 1000, 1000, 64, True, None, True),
    (1, 1, 1, 1000, 1000, 80, True, 300, False),
    (1, 2, 1, 1000, 1000, 128, False, None, False),
    (2, 8, 2, 1, 1, 64, True, None, False),
    (2, 8, 2, 1, 1000, 128, True, None, True),   # decode: one query against a cache
    (1, 4, 1, 5, 300, 80, True, 64, False),      # decode of 5 with a window
    (1, 3, 3, 130, 61, 64, False, None, False),  # Sq > Sk
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "B{}H{}/{}S{}x{}D{}{}{}{}".format(
    *c[:6], "c" if c[6] else "", f"w{c[7]}" if c[7] else "", "p" if c[8] else ""))
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_matches_cpu_op_and_sdpa(case, layout, dtype) -> None:
    b, hq, hkv, sq, sk, d, causal, window, padding = case
    q = randn(b, hq, sq, d, dtype=dtype)
    k = randn(b, hkv, sk, d, dtype=dtype)
    v = randn(b, hkv, sk, d, dtype=dtype)
    keep = explicit_mask(sq, sk, causal, window)[None, None].expand(b, 1, sq, sk).clone()
    pad = None
    if padding:
        pad = torch.ones(b, sk, dtype=torch.int64)
        pad[0, : sk // 3] = 0  # left padding of the first sequence
        keep &= pad.bool()[:, None, None, :]
        pad = pad.cuda()
    seen = keep.any(-1, keepdim=True).expand(b, hq, sq, d).cuda()  # rows that see some key
    want = torch.where(seen, sdpa_math(q, k, v, keep), torch.zeros((), device="cuda"))
    args = (q, k, v) if layout == "bhsd" else tuple(t.transpose(1, 2) for t in (q, k, v))
    kwargs = {"causal": causal, "sliding_window": window, "key_padding_mask": pad,
              "layout": layout}
    got = run(*args, **kwargs)
    cpu = run_on_cpu(*args, **kwargs)
    assert got.device.type == "cuda" and got.dtype == dtype
    assert got.shape == ((b, hq, sq, d) if layout == "bhsd" else (b, sq, hq, d))
    assert relative_l2(got, cpu) < TOLERANCE[dtype]
    if layout == "bshd":
        got = got.transpose(1, 2)
    assert relative_l2(got, want) < TOLERANCE[dtype]
    assert torch.all(got[~seen] == 0)


def test_decode_alignment_is_bottom_right() -> None:
    """Sq < Sk: query i sits at position Sk - Sq + i; SDPA's is_causal (top-left) differs."""
    q, k, v = randn(1, 2, 4, 64), randn(1, 2, 20, 64), randn(1, 2, 20, 64)
    got = run(q, k, v, causal=True)
    assert relative_l2(got, sdpa_math(q, k, v, explicit_mask(4, 20, True, None))) < 1e-5
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert relative_l2(got, top_left) > 1e-2


@pytest.mark.parametrize("pad_dtype", [torch.bool, torch.uint8, torch.int8, torch.int32,
                                       torch.int64])
def test_key_padding_dtypes(pad_dtype) -> None:
    q, k, v = randn(2, 4, 17, 80), randn(2, 2, 17, 80), randn(2, 2, 17, 80)
    pad = torch.rand(2, 17) > 0.3
    pad[:, -1] = True
    keep = pad[:, None, None, :] & explicit_mask(17, 17, True, None)
    got = run(q, k, v, causal=True, key_padding_mask=pad.to(pad_dtype).cuda())
    seen = keep.any(-1, keepdim=True).expand(2, 4, 17, 80).cuda()
    want = torch.where(seen, sdpa_math(q, k, v, keep), torch.zeros((), device="cuda"))
    assert relative_l2(got, want) < 1e-5
    assert torch.all(got[~seen] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_boolean_and_additive_masks_broadcast(dtype) -> None:
    q, k, v = (randn(2, 4, 9, 64, dtype=dtype), randn(2, 4, 12, 64, dtype=dtype),
               randn(2, 4, 12, 64, dtype=dtype))
    keep = torch.rand(9, 12) > 0.3
    keep[:, 0] = True
    got = run(q, k, v, attn_mask=keep.cuda())
    assert relative_l2(got, sdpa_math(q, k, v, keep)) < TOLERANCE[dtype]
    assert relative_l2(got, run_on_cpu(q, k, v, attn_mask=keep)) < TOLERANCE[dtype]
    for bias in (torch.randn(2, 1, 9, 12), torch.randn(9, 12).bfloat16(),
                 torch.randn(1, 4, 1, 12).half()):
        got = run(q, k, v, attn_mask=bias.cuda())
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
            want = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                  attn_mask=bias.float().cuda())
        assert relative_l2(got, want) < TOLERANCE[dtype]
        assert relative_l2(got, run_on_cpu(q, k, v, attn_mask=bias)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_scale_and_lse(dtype) -> None:
    q, k, v = (randn(2, 4, 31, 64, dtype=dtype), randn(2, 2, 45, 64, dtype=dtype),
               randn(2, 2, 45, 64, dtype=dtype))
    scale = 0.3
    keep = explicit_mask(31, 45, True, 20)
    out, lse = run(q, k, v, causal=True, sliding_window=20, scale=scale, return_lse=True)
    assert lse.shape == (2, 4, 31) and lse.dtype == torch.float32 and lse.device.type == "cuda"
    assert relative_l2(out, sdpa_math(q, k, v, keep, scale=scale)) < TOLERANCE[dtype]
    scores = q.double().cpu() @ k.double().cpu().repeat_interleave(2, dim=1).transpose(-1, -2)
    want_lse = torch.logsumexp((scores * scale).masked_fill(~keep, -math.inf), dim=-1)
    assert relative_l2(lse, want_lse) < 1e-5  # lse is f32: the f32 bound
    _, cpu_lse = run_on_cpu(q, k, v, causal=True, sliding_window=20, scale=scale, return_lse=True)
    assert relative_l2(lse, cpu_lse) < 1e-5


def test_fully_masked_rows_are_zero_with_lse_minus_inf() -> None:
    q, k, v = randn(1, 2, 4, 64), randn(1, 2, 6, 64), randn(1, 2, 6, 64)
    keep = torch.ones(4, 6, dtype=torch.bool)
    keep[2] = False
    out, lse = run(q, k, v, attn_mask=keep.cuda(), return_lse=True)
    assert torch.all(out[:, :, 2] == 0) and torch.all(lse[:, :, 2] == -math.inf)
    assert torch.all(torch.isfinite(lse[:, :, [0, 1, 3]]))
    additive = torch.zeros(4, 6).masked_fill(~keep, -math.inf)
    out_additive, lse_additive = run(q, k, v, attn_mask=additive.cuda(), return_lse=True)
    assert torch.all(out_additive[:, :, 2] == 0) and torch.all(lse_additive[:, :, 2] == -math.inf)
    assert relative_l2(out_additive, out) < 1e-6
    # Sq > Sk with causal alignment: the first Sq - Sk queries see no key at all.
    q = randn(1, 2, 9, 64)
    out, lse = run(q, k, v, causal=True, return_lse=True)
    assert torch.all(out[:, :, :3] == 0) and torch.all(lse[:, :, :3] == -math.inf)
    assert relative_l2(out, run_on_cpu(q, k, v, causal=True)) < 1e-5


def test_non_contiguous_last_dim_and_strided_heads() -> None:
    q, k, v = randn(1, 2, 8, 64), randn(1, 2, 8, 64), randn(1, 2, 8, 64)
    want = run(q, k, v)
    strided = torch.empty(1, 2, 8, 128, device="cuda")[..., ::2]
    strided[...] = q
    assert strided.stride(-1) == 2
    assert relative_l2(run(strided, k, v), want) < 1e-6
    # bshd views of bhsd storage: unit last stride, heads and seq strides swapped
    got = run(*(t.transpose(1, 2) for t in (q, k, v)), layout="bshd")
    assert relative_l2(got.transpose(1, 2), want) < 1e-6


def test_head_dim_limits() -> None:
    """The simple kernel takes head dims up to 512; v_dim may differ from head_dim."""
    q, k, v = randn(1, 2, 5, 512), randn(1, 1, 7, 512), randn(1, 1, 7, 48)
    got = run(q, k, v, causal=True)
    assert got.shape == (1, 2, 5, 48)
    assert relative_l2(got, run_on_cpu(q, k, v, causal=True)) < 1e-5
    too_wide = randn(1, 1, 2, 520)
    with pytest.raises(ArgumentError, match="head_dim in \\[1, 512\\]"):
        ops.attention(too_wide, too_wide, too_wide)


def test_all_tensors_on_one_device() -> None:
    q = randn(1, 2, 4, 16)
    with pytest.raises(DeviceError, match="q is on cuda:0, k on cpu"):
        ops.attention(q, q.cpu(), q)
    with pytest.raises(DeviceError, match="key_padding_mask on cpu"):
        ops.attention(q, q, q, key_padding_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(DeviceError, match="attn_mask on cpu"):
        ops.attention(q, q, q, attn_mask=torch.ones(4, 4, dtype=torch.bool))
