"""hfport's kernels as torch custom ops (hfport.torch_ops): torch.library.opcheck on each (schema,
fake implementation against the real one, dispatch), and a function mixing them with torch code
compiled by torch.compile(fullgraph=True), which raises on any graph break, equal to the eager
hfport result and to torch's own computation."""

from __future__ import annotations

import hfport.torch_ops as hops
import torch
import torch.nn.functional as F


def inputs(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    positions = torch.arange(7, dtype=torch.float32)[:, None] / 10000 ** (
        torch.arange(0, 16, 2, dtype=torch.float32) / 16)
    angles = torch.cat([positions, positions], dim=-1)
    return {"q": r(2, 4, 7, 16), "k": r(2, 2, 7, 16), "v": r(2, 2, 7, 16), "x": r(2, 7, 24),
            "w": r(24), "b": r(24), "W": r(40, 24), "Wb": r(40), "cos": angles.cos(),
            "sin": angles.sin(), "u": r(2, 6, 9), "delta": r(2, 6, 9), "A": -r(6, 4).exp(),
            "B": r(2, 4, 9), "C": r(2, 4, 9), "D": r(6), "conv_w": r(6, 4), "conv_b": r(6)}


def cases(t: dict[str, torch.Tensor]) -> list[tuple[object, tuple[object, ...]]]:
    return [
        (hops.attention, (t["q"], t["k"], t["v"], True)),
        (hops.rms_norm, (t["x"], t["w"], 1e-6)),
        (hops.layer_norm, (t["x"], t["w"], t["b"], 1e-5)),
        (hops.linear, (t["x"], t["W"], t["Wb"], "gelu")),
        (hops.gelu, (t["x"], "tanh")),
        (hops.silu, (t["x"],)),
        (hops.swiglu, (t["x"], t["x"] * 0.5)),
        (hops.rope, (t["q"], t["k"], t["cos"], t["sin"])),
        (hops.causal_conv1d, (t["u"], t["conv_w"], t["conv_b"], "silu")),
        (hops.selective_scan, (t["u"], t["delta"], t["A"], t["B"], t["C"], t["D"], None, None,
                               True)),
    ]


def test_every_op_passes_opcheck() -> None:
    t = inputs(0)
    checked = cases(t)
    assert {op._name for op, _ in checked} == set(hops.__all__)
    for op, args in checked:
        torch.library.opcheck(op, args)


def test_compiled_function_without_graph_breaks() -> None:
    t = inputs(1)

    def block(x, w, W, Wb, q, k, v, cos, sin):
        h = hops.linear(hops.rms_norm(x, w, 1e-6), W, Wb, "gelu")
        q, k = hops.rope(q, k, cos, sin)
        return h.sum(-1) * 2.0, hops.attention(q, k, v, True) + 1.0

    args = (t["x"], t["w"], t["W"], t["Wb"], t["q"], t["k"], t["v"], t["cos"], t["sin"])
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True)
    got_h, got_attn = compiled(*args)
    want_h, want_attn = block(*args)
    assert torch.allclose(got_h, want_h, rtol=1e-5, atol=1e-5)
    assert torch.allclose(got_attn, want_attn, rtol=1e-5, atol=1e-6)
    # And the eager hfport path is torch's computation.
    x = t["x"]
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * t["w"]
    reference = F.gelu(F.linear(normed, t["W"], t["Wb"])).sum(-1) * 2.0
    assert torch.allclose(want_h, reference, rtol=1e-4, atol=1e-4)
    half = t["q"].shape[-1] // 2

    def rotated(z: torch.Tensor) -> torch.Tensor:
        turned = torch.cat([-z[..., half:], z[..., :half]], dim=-1)
        return z * t["cos"] + turned * t["sin"]

    kv = {"enable_gqa": True, "is_causal": True}
    expected = F.scaled_dot_product_attention(rotated(t["q"]), rotated(t["k"]), t["v"], **kv)
    assert torch.allclose(want_attn, expected + 1.0, rtol=1e-4, atol=1e-5)
