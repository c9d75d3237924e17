"""hfport.ops.rope_frequencies / rope_table / rope against transformers.

Tables: every rope_type against transformers' own ROPE_INIT_FUNCTIONS and LlamaRotaryEmbedding
(which also runs the dynamic and longrope updates), from configs built by LlamaConfig.
Rotation: against transformers' apply_rotary_pos_emb (half-split) and a GPT-J reference written
here from GPT-J's rotate_every_two (interleaved), with partial rotary, GQA head counts, both
layouts, decode offsets, f32/f16/bf16, in place. Inputs are fresh random values every run.
"""

from __future__ import annotations

import hfport
import pytest
import torch
from hfport import ops
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

HEAD_DIM = 64
HALF = HEAD_DIM // 2


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    want = want.double()
    return ((got.double() - want).norm() / want.norm()).item()


def llama_config(rope_parameters: dict, **extra) -> LlamaConfig:
    return LlamaConfig(hidden_size=256, num_attention_heads=4, head_dim=HEAD_DIM,
                       max_position_embeddings=4096, rope_parameters=rope_parameters, **extra)


def longrope_factors(scale: float) -> list[float]:
    return [1.0 + scale * i / HALF + torch.rand(()).item() * 0.1 for i in range(HALF)]


CONFIGS = {
    "default": lambda: llama_config({"rope_type": "default", "rope_theta": 10000.0}),
    "default-500k": lambda: llama_config({"rope_type": "default", "rope_theta": 500000.0}),
    "linear": lambda: llama_config({"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0}),
    "dynamic": lambda: llama_config({"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}),
    "yarn": lambda: llama_config({"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0,
                                  "original_max_position_embeddings": 1024}),
    "yarn-mscale": lambda: llama_config({"rope_type": "yarn", "factor": 40.0, "rope_theta": 10000.0,
                                         "original_max_position_embeddings": 4096, "mscale": 1.0,
                                         "mscale_all_dim": 0.707, "beta_fast": 16,
                                         "truncate": False}),
    "longrope": lambda: llama_config({"rope_type": "longrope", "rope_theta": 10000.0,
                                      "short_factor": longrope_factors(0.5),
                                      "long_factor": longrope_factors(8.0),
                                      "original_max_position_embeddings": 1024}),
    "llama3": lambda: llama_config({"rope_type": "llama3", "factor": 8.0, "rope_theta": 500000.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 1024}),
}


def transformers_init(config: LlamaConfig, seq_len: int | None = None):
    rope_type = config.rope_parameters["rope_type"]
    if rope_type == "default":
        return LlamaRotaryEmbedding.compute_default_rope_parameters(config)
    return ROPE_INIT_FUNCTIONS[rope_type](config, None, seq_len=seq_len)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_frequencies_match_rope_init_functions(name: str) -> None:
    config = CONFIGS[name]()
    want_inv, want_scaling = transformers_init(config)
    got_inv, got_scaling = ops.rope_frequencies(config)
    got_inv = torch.from_dlpack(got_inv)
    assert got_inv.shape == want_inv.shape and got_inv.dtype == torch.float32
    torch.testing.assert_close(got_inv, want_inv.float(), rtol=2e-7, atol=0)
    assert got_scaling == pytest.approx(float(want_scaling), rel=1e-7)


@pytest.mark.parametrize("name,seq_len", [("dynamic", 9000), ("longrope", 2000)])
def test_frequencies_at_a_long_seq_len(name: str, seq_len: int) -> None:
    config = CONFIGS[name]()
    want_inv, _ = transformers_init(config, seq_len=seq_len)
    got_inv, _ = ops.rope_frequencies(config.to_dict(), seq_len=seq_len)
    torch.testing.assert_close(torch.from_dlpack(got_inv), want_inv.float(), rtol=2e-7, atol=0)
    short_inv, _ = ops.rope_frequencies(config)
    assert not torch.equal(torch.from_dlpack(short_inv), torch.from_dlpack(got_inv))


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("start,length", [(0, 37), (5000, 3)])
def test_table_matches_rotary_embedding(name: str, start: int, length: int) -> None:
    """cos/sin for positions [start, start + length), as LlamaRotaryEmbedding gives them (its
    dynamic and longrope updates see the same largest position)."""
    config = CONFIGS[name]()
    positions = torch.arange(start, start + length).unsqueeze(0)
    rotary = LlamaRotaryEmbedding(config)
    want_cos, want_sin = rotary(torch.zeros(1, dtype=torch.float32), positions)
    got_cos, got_sin = ops.rope_table(config, positions)
    got_cos, got_sin = torch.from_dlpack(got_cos), torch.from_dlpack(got_sin)
    assert got_cos.shape == want_cos.shape == (1, length, HEAD_DIM)
    torch.testing.assert_close(got_cos, want_cos, rtol=0, atol=2e-6)
    torch.testing.assert_close(got_sin, want_sin, rtol=0, atol=2e-6)


def test_table_from_a_list_and_a_4x_rope_scaling_dict() -> None:
    """A transformers 4.x config.json: `rope_scaling` with `type`, rope_theta at the top level."""
    config = {"hidden_size": 128, "num_attention_heads": 2, "max_position_embeddings": 2048,
              "rope_theta": 20000.0, "rope_scaling": {"type": "linear", "factor": 2.0}}
    cos, sin = ops.rope_table(config, [0, 3, 7])
    inv = 1.0 / (20000.0 ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64)) / 2.0
    angles = torch.tensor([0.0, 3.0, 7.0], dtype=torch.float64)[:, None] * inv
    torch.testing.assert_close(torch.from_dlpack(cos).double(),
                               torch.cat([angles.cos(), angles.cos()], -1), rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.from_dlpack(sin).double(),
                               torch.cat([angles.sin(), angles.sin()], -1), rtol=0, atol=1e-5)


def test_partial_rotary_factor_table_width() -> None:
    config = {"hidden_size": 256, "num_attention_heads": 4, "partial_rotary_factor": 0.5,
              "max_position_embeddings": 64, "rope_theta": 10000.0}
    cos, _ = ops.rope_table(config, torch.arange(5))
    assert tuple(cos.shape) == (5, 32)


@pytest.mark.parametrize("config,message", [
    ({"hidden_size": 64, "num_attention_heads": 2, "rope_parameters": {"rope_type": "su"}},
     "rope_type 'su' is not supported"),
    ({"hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 8,
      "rope_parameters": {"rope_type": "linear"}}, "needs 'rope_parameters' 'factor'"),
    ({"num_attention_heads": 2}, "needs 'head_dim', or 'hidden_size'"),
    ({"hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 8,
      "rope_parameters": {"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}},
     "'short_factor' has 1 numbers; rotary_dim / 2 = 16 expected"),
    ({"hidden_size": 64, "num_attention_heads": 2,
      "rope_parameters": {"full_attention": {"rope_type": "default"}}}, "per-layer-type"),
])
def test_config_errors(config: dict, message: str) -> None:
    with pytest.raises(hfport.errors.ConfigError, match=message):
        ops.rope_frequencies(config)


# Issue 12, defect 4: a dict can hold NaN and inf, which config.json cannot; they were a bare
# RuntimeError from the JSON parser. Now the field that holds one is named, and a non-finite value
# in a field rope does not read is no error at all.
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("path", [("rope_theta",), ("rope_parameters", "factor"),
                                  ("rope_parameters", "short_factor", 3)])
def test_non_finite_config_values_are_config_errors(bad: float, path: tuple) -> None:
    config = {"hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 8,
              "rope_theta": 10000.0, "original_max_position_embeddings": 4,
              "rope_parameters": {"rope_type": "longrope" if "short_factor" in path else "linear",
                                  "factor": 2.0, "short_factor": [1.0] * 16,
                                  "long_factor": [1.0] * 16}}
    holder = config
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = bad
    field = path[1] if len(path) > 1 else path[0]
    for call in (lambda: ops.rope_frequencies(config),
                 lambda: ops.rope_table(config, torch.arange(3))):
        with pytest.raises(hfport.errors.ConfigError, match=f"'{field}'.* must be a finite number"):
            call()


def test_non_finite_values_rope_does_not_read_are_ignored() -> None:
    config = {"hidden_size": 64, "num_attention_heads": 2, "rope_theta": 10000.0,
              "initializer_range": float("nan"), "layer_norm_eps": [float("inf")]}
    inv, scaling = ops.rope_frequencies(config)
    expected = 1.0 / 10000.0 ** (torch.arange(0, 32, 2, dtype=torch.float64) / 32)
    torch.testing.assert_close(torch.from_dlpack(inv).double(), expected, rtol=1e-6, atol=0)
    assert scaling == 1.0


def test_config_that_json_cannot_hold_is_a_config_error() -> None:
    with pytest.raises(hfport.errors.ConfigError, match="'rope_parameters.factor' holds a set"):
        ops.rope_frequencies({"hidden_size": 64, "num_attention_heads": 2,
                              "rope_parameters": {"factor": {2.0}}})
    with pytest.raises(hfport.errors.ConfigError, match="keys must be strings"):
        ops.rope_frequencies({"hidden_size": 64, "num_attention_heads": 2, (3, 4): 1})


# ----------------------------------------------------------------------------------------------
# Application.

def gptj_reference(x: torch.Tensor, cos_half: torch.Tensor, sin_half: torch.Tensor) -> torch.Tensor:
    """GPT-J's rotation in float64 (bhsd; cos_half [B, S, R/2]): rotate_every_two with
    repeat_interleave'd tables, on the first R features."""
    x = x.double()
    rotary = 2 * cos_half.shape[-1]
    rot, rest = x[..., :rotary], x[..., rotary:]
    cos = torch.repeat_interleave(cos_half.double(), 2, dim=-1).unsqueeze(1)
    sin = torch.repeat_interleave(sin_half.double(), 2, dim=-1).unsqueeze(1)
    every_two = torch.stack((-rot[..., 1::2], rot[..., ::2]), dim=-1).flatten(-2)
    return torch.cat([rot * cos + every_two * sin, rest], dim=-1)


def half_split_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' apply_rotary_pos_emb in float64 on the first cos.shape[-1] features."""
    rotary = cos.shape[-1]
    rot, rest = x.double()[..., :rotary], x.double()[..., rotary:]
    out, _ = apply_rotary_pos_emb(rot, rot, cos.double(), sin.double(), unsqueeze_dim=1)
    return torch.cat([out, rest], dim=-1)


def random_table(batch: int, seq: int, rotary: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (10000.0 ** (torch.arange(0, rotary, 2, dtype=torch.float32) / rotary))
    pos = torch.arange(offset, offset + seq, dtype=torch.float32)
    pos = pos[None, :] + torch.randint(0, 50, (batch, 1)).float()  # per-batch offsets
    angles = pos[..., None] * inv
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


TOL = {torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("rotary", [HEAD_DIM, 32])
def test_half_split_matches_apply_rotary_pos_emb(dtype, layout, rotary) -> None:
    batch, heads_q, heads_k, seq = 2, 8, 2, 19
    q = torch.randn(batch, heads_q, seq, HEAD_DIM).to(dtype)
    k = torch.randn(batch, heads_k, seq, HEAD_DIM).to(dtype)
    cos, sin = random_table(batch, seq, rotary, offset=0)
    want_q, want_k = half_split_reference(q, cos, sin), half_split_reference(k, cos, sin)
    if layout == "bshd":
        q_in, k_in = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()
    else:
        q_in, k_in = q, k
    q_out, k_out = ops.rope(q_in, k_in, cos.to(dtype), sin.to(dtype), layout=layout)
    q_out, k_out = torch.from_dlpack(q_out), torch.from_dlpack(k_out)
    assert q_out.dtype == dtype and q_out.shape == q_in.shape and k_out.shape == k_in.shape
    if layout == "bshd":
        q_out, k_out = q_out.transpose(1, 2), k_out.transpose(1, 2)
    tol = TOL[dtype] if dtype != torch.float32 else 1e-6
    assert rel_err(q_out, want_q) < tol
    assert rel_err(k_out, want_k) < tol
    # the pass-through features are copied exactly
    assert torch.equal(q_out[..., rotary:], q[..., rotary:])


def test_f32_matches_transformers_in_f32_closely() -> None:
    """Against transformers' own f32 computation (not a float64 rewrite of it)."""
    q, k = torch.randn(1, 4, 33, HEAD_DIM), torch.randn(1, 2, 33, HEAD_DIM)
    cos, sin = random_table(1, 33, HEAD_DIM, offset=100)
    want_q, want_k = apply_rotary_pos_emb(q, k, cos, sin)
    got_q, got_k = (torch.from_dlpack(t) for t in ops.rope(q, k, cos, sin))
    torch.testing.assert_close(got_q, want_q, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got_k, want_k, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rotary", [HEAD_DIM, 24])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_interleaved_matches_gptj(rotary: int, dtype) -> None:
    q = torch.randn(2, 3, 11, HEAD_DIM).to(dtype)
    k = torch.randn(2, 1, 11, HEAD_DIM).to(dtype)
    cos, sin = random_table(2, 11, rotary, offset=7)
    cos_half, sin_half = cos[..., : rotary // 2], sin[..., : rotary // 2]
    # the half-width table, and transformers' full-width cat table (first half read): same result
    for c, s in [(cos_half, sin_half), (cos, sin)]:
        q_out, k_out = ops.rope(q, k, c, s, interleaved=True, rotary_dim=rotary)
        assert rel_err(torch.from_dlpack(q_out), gptj_reference(q, cos_half, sin_half)) < TOL[dtype]
        assert rel_err(torch.from_dlpack(k_out), gptj_reference(k, cos_half, sin_half)) < TOL[dtype]


def test_decode_rows_equal_the_full_sequence() -> None:
    """Rotating position 40 alone with its table row equals row 40 of the full rotation."""
    config = CONFIGS["llama3"]()
    q, k = torch.randn(1, 4, 41, HEAD_DIM), torch.randn(1, 2, 41, HEAD_DIM)
    cos, sin = ops.rope_table(config, torch.arange(41))
    full_q, full_k = (torch.from_dlpack(t) for t in ops.rope(q, k, cos, sin))
    cos1, sin1 = ops.rope_table(config, [40])
    step_q, step_k = (torch.from_dlpack(t) for t in ops.rope(q[:, :, 40:], k[:, :, 40:], cos1, sin1))
    torch.testing.assert_close(step_q, full_q[:, :, 40:], rtol=0, atol=0)
    torch.testing.assert_close(step_k, full_k[:, :, 40:], rtol=0, atol=0)


def test_inplace_writes_into_q_and_k_and_handles_strided_views() -> None:
    q, k = torch.randn(1, 17, 4, HEAD_DIM), torch.randn(1, 17, 2, HEAD_DIM)
    cos, sin = random_table(1, 17, HEAD_DIM, offset=3)
    want_q = half_split_reference(q.transpose(1, 2), cos, sin)
    want_k = half_split_reference(k.transpose(1, 2), cos, sin)
    q_view, k_view = q.transpose(1, 2), k.transpose(1, 2)  # bhsd views of bshd storage
    q_out, k_out = ops.rope(q_view, k_view, cos, sin, inplace=True)
    assert rel_err(q.transpose(1, 2), want_q) < 1e-6
    assert rel_err(k.transpose(1, 2), want_k) < 1e-6
    assert torch.from_dlpack(q_out).data_ptr() == q.data_ptr()
    assert torch.from_dlpack(k_out).data_ptr() == k.data_ptr()


def test_k_may_be_none() -> None:
    q = torch.randn(1, 2, 5, HEAD_DIM)
    cos, sin = random_table(1, 5, HEAD_DIM, offset=0)
    q_out, k_out = ops.rope(q, None, cos, sin)
    assert k_out is None
    assert rel_err(torch.from_dlpack(q_out), half_split_reference(q, cos, sin)) < 1e-6


@pytest.mark.parametrize("case,message", [
    ("bad_width", "cos/sin have 48 features; rotary_dim 64 needs 64"),
    ("odd_rotary", "rotary_dim must be even"),
    ("seq", "cos/sin must be \\[seq, W\\] or \\[batch or 1, seq, W\\] with seq = 5"),
    ("k_batch", "only the head counts may differ"),
    ("int_q", "q must be F32, F16 or BF16, got I64"),
    ("inplace_strided", "inplace needs q with a unit-stride last dimension"),
])
def test_rope_errors(case: str, message: str) -> None:
    q, k = torch.randn(1, 2, 5, HEAD_DIM), torch.randn(1, 2, 5, HEAD_DIM)
    cos, sin = random_table(1, 5, HEAD_DIM, offset=0)
    kwargs = {}
    if case == "bad_width":
        cos, sin, kwargs = cos[..., :48], sin[..., :48], {"rotary_dim": 64}
    elif case == "odd_rotary":
        kwargs = {"rotary_dim": 7}
    elif case == "seq":
        cos, sin = cos[:, :4], sin[:, :4]
    elif case == "k_batch":
        k = torch.randn(2, 2, 5, HEAD_DIM)
    elif case == "int_q":
        q = torch.ones(1, 2, 5, HEAD_DIM, dtype=torch.int64)
    elif case == "inplace_strided":
        q = torch.randn(1, 2, 5, 2 * HEAD_DIM)[..., ::2]
        kwargs = {"inplace": True}
    with pytest.raises(hfport.errors.Error, match=message):
        ops.rope(q, k, cos, sin, **kwargs)


@pytest.mark.parametrize("grid_h, grid_w, head_dim, theta", [
    (4, 4, 8, 100.0), (3, 5, 16, 100.0), (7, 2, 64, 1000.0), (1, 1, 4, 10.0)])
def test_2d_table_matches_dinov3_rope_embedding(grid_h: int, grid_w: int, head_dim: int,
                                                theta: float) -> None:
    """DINOv3's axial table against transformers' own module at eval, for square and oblong
    grids; then rotating only the patch tokens of q equals transformers' apply_rotary_pos_emb,
    which leaves the class and register tokens as they are."""
    from transformers import DINOv3ViTConfig
    from transformers.models.dinov3_vit import modeling_dinov3_vit as dinov3

    heads = 2
    config = DINOv3ViTConfig(hidden_size=head_dim * heads, num_attention_heads=heads,
                             patch_size=8, rope_theta=theta)
    module = dinov3.DINOv3ViTRopePositionEmbedding(config).eval()
    want_cos, want_sin = module(torch.zeros(1, 3, grid_h * 8, grid_w * 8))
    cos, sin = (torch.from_dlpack(t) for t in ops.rope_2d_table(grid_h, grid_w, head_dim, theta))
    assert cos.shape == want_cos.shape == (grid_h * grid_w, head_dim)
    torch.testing.assert_close(cos, want_cos, rtol=0, atol=2e-6)
    torch.testing.assert_close(sin, want_sin, rtol=0, atol=2e-6)

    prefix = 3  # a class token and two registers
    g = torch.Generator().manual_seed(grid_h * 10 + grid_w)
    q = torch.randn(2, heads, prefix + grid_h * grid_w, head_dim, generator=g)
    k = torch.randn(2, heads, prefix + grid_h * grid_w, head_dim, generator=g)
    want_q, want_k = dinov3.apply_rotary_pos_emb(q, k, want_cos, want_sin)
    got_q, got_k = q.clone(), k.clone()
    ops.rope(got_q[:, :, prefix:], got_k[:, :, prefix:], cos, sin, inplace=True)
    torch.testing.assert_close(got_q, want_q, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got_k, want_k, rtol=1e-6, atol=1e-6)
    assert torch.equal(got_q[:, :, :prefix], q[:, :, :prefix])


@pytest.mark.parametrize("args, message", [
    ((0, 4, 8), "grid_h, grid_w >= 1"), ((4, 4, 6), "head_dim 6"), ((4, 4, 8, 0.0), "theta 0")])
def test_2d_table_errors(args: tuple, message: str) -> None:
    with pytest.raises(hfport.errors.ArgumentError, match=message):
        ops.rope_2d_table(*args)
