"""hfport.ops given CUDA tensors: each op runs on the GPU and agrees with the same op given host
tensors (pinned to float64 by the CPU tests) and, where torch has the computation, with torch on
CUDA: rms_norm with transformers' LlamaRMSNorm, layer_norm with F.layer_norm, gelu and silu with
torch's, rope with transformers' apply_rotary_pos_emb, causal_conv1d with a float64 F.conv1d.

f32 / f16 / bf16, odd sizes, strided inputs, outputs passed as out= filled with NaN (an element a
kernel forgets to write shows), states and in-place rotations checked in the caller's own memory,
arguments on two devices raise DeviceError. Every test needs a GPU and skips elsewhere, saying
which of hfport's build, hfport's device count or torch lacks CUDA.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from cuda_testing import TOLERANCE, needs_cuda, poisoned, randn, relative_l2
from hfport import ops
from hfport.errors import ArgumentError, DeviceError
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb

pytestmark = needs_cuda

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def on_torch(result) -> torch.Tensor:
    return torch.from_dlpack(result)


def cpu_copy(t: torch.Tensor) -> torch.Tensor:
    """The same values and strides on the host, for the CPU op."""
    return t.cpu()


# ---------------------------------------------------------------------------------------------
# Norms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 7), (3, 5, 67), (2, 33, 1000)])
def test_rms_norm_matches_the_cpu_op_and_llama_rms_norm(dtype, shape):
    hidden = shape[-1]
    norm = LlamaRMSNorm(hidden, eps=1e-5).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(hidden) * 0.5 + 1)
    norm = norm.requires_grad_(False).cuda()
    x = randn(*shape, dtype=dtype)
    out = poisoned(shape, dtype)
    got = ops.rms_norm(x, norm.weight, 1e-5, out=out)
    assert on_torch(got).data_ptr() == out.data_ptr()
    assert on_torch(got).device.type == "cuda"
    want_cpu = on_torch(ops.rms_norm(cpu_copy(x), cpu_copy(norm.weight), 1e-5))
    assert relative_l2(out, want_cpu) < TOLERANCE[dtype]
    assert relative_l2(out, norm(x)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_fused_residual_and_unit_offset(dtype):
    x, residual = randn(4, 9, 48, dtype=dtype), randn(4, 9, 48, dtype=dtype)
    gemma = GemmaRMSNorm(48, eps=1e-6).to(dtype)
    with torch.no_grad():
        gemma.weight.copy_(torch.randn(48) * 0.3)
    gemma = gemma.requires_grad_(False).cuda()
    out = poisoned(x.shape, dtype)
    normed, total = ops.rms_norm(x, gemma.weight, 1e-6, residual=residual, add_unit_offset=True,
                                 out=out)
    assert on_torch(normed).data_ptr() == out.data_ptr()
    # The sum rounded once to the dtype, as torch's own add: bit for bit.
    assert torch.equal(on_torch(total), x + residual)
    assert relative_l2(out, gemma(x + residual)) < TOLERANCE[dtype]
    want_cpu, _ = ops.rms_norm(cpu_copy(x), cpu_copy(gemma.weight), 1e-6,
                               residual=cpu_copy(residual), add_unit_offset=True)
    assert relative_l2(out, on_torch(want_cpu)) < TOLERANCE[dtype]


def test_rms_norm_strided_input_and_in_place():
    x = randn(300, 19, dtype=torch.bfloat16).t()  # [19, 300], column major
    weight = randn(300) * 0.3 + 1
    want = on_torch(ops.rms_norm(cpu_copy(x), cpu_copy(weight), 1e-6))
    assert relative_l2(on_torch(ops.rms_norm(x, weight, 1e-6)), want) < TOLERANCE[torch.bfloat16]
    y = x.contiguous()
    ops.rms_norm(y, weight, 1e-6, out=y)
    assert relative_l2(y, want) < TOLERANCE[torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(37, 67), (3, 2049), (2, 3, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_the_cpu_op_and_torch(dtype, shape, affine):
    hidden = shape[-1]
    x = randn(*shape, dtype=dtype) + 3  # shifted: a one-pass variance would lose digits
    weight = (randn(hidden) * 0.3 + 1).to(dtype) if affine else None
    bias = (randn(hidden) * 0.5).to(dtype) if affine else None
    out = poisoned(shape, dtype)
    ops.layer_norm(x, weight, bias, 1e-5, out=out)
    want = F.layer_norm(x, (hidden,), weight, bias, 1e-5)
    assert relative_l2(out, want) < TOLERANCE[dtype]
    want_cpu = ops.layer_norm(cpu_copy(x), None if weight is None else cpu_copy(weight),
                              None if bias is None else cpu_copy(bias), 1e-5)
    assert relative_l2(out, on_torch(want_cpu)) < TOLERANCE[dtype]


# ---------------------------------------------------------------------------------------------
# Activations


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 1001, 70001])
def test_activations_match_the_cpu_ops_and_torch(dtype, n):
    gate = (randn(n, 2, dtype=dtype) * 2)[:, 0]  # strided
    up = randn(n, dtype=dtype)
    cases = {
        "gelu": (lambda out: ops.gelu(gate, out=out), lambda: ops.gelu(cpu_copy(gate)),
                 F.gelu(gate)),
        "gelu tanh": (lambda out: ops.gelu(gate, "tanh", out=out),
                      lambda: ops.gelu(cpu_copy(gate), "tanh"), F.gelu(gate, approximate="tanh")),
        "silu": (lambda out: ops.silu(gate, out=out), lambda: ops.silu(cpu_copy(gate)),
                 F.silu(gate)),
        "swiglu": (lambda out: ops.swiglu(gate, up, out=out),
                   lambda: ops.swiglu(cpu_copy(gate), cpu_copy(up)), F.silu(gate) * up),
    }
    for name, (on_gpu, on_cpu, torch_result) in cases.items():
        out = poisoned((n,), dtype)
        on_gpu(out)
        assert relative_l2(out, on_torch(on_cpu())) < TOLERANCE[dtype], name
        assert relative_l2(out, torch_result) < TOLERANCE[dtype], name
    want = on_torch(ops.swiglu(cpu_copy(gate), cpu_copy(up)))
    ops.swiglu(gate, up, out=up)  # in place on up
    assert relative_l2(up, want) < TOLERANCE[dtype]


# ---------------------------------------------------------------------------------------------
# RoPE

HEAD_DIM = 64


def rope_table(seq: int, rotary: int, batch: int | None = None):
    """cos, sin in transformers' layout, cat(freqs, freqs), f32 on CUDA."""
    shape = (seq, rotary // 2) if batch is None else (batch, seq, rotary // 2)
    angles = randn(*shape) * 3
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


def hf_rope(q, k, cos, sin, rotary):
    """transformers' apply_rotary_pos_emb on [B, H, S, D], partial rotary as the models do it."""
    if cos.dim() == 2:
        cos, sin = cos[None], sin[None]
    q_rot, k_rot = apply_rotary_pos_emb(q[..., :rotary], k[..., :rotary], cos, sin)
    return (torch.cat([q_rot, q[..., rotary:]], dim=-1),
            torch.cat([k_rot, k[..., rotary:]], dim=-1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("rotary", [HEAD_DIM, 24])
@pytest.mark.parametrize("inplace", [False, True])
def test_rope_matches_the_cpu_op_and_apply_rotary_pos_emb(dtype, layout, rotary, inplace):
    batch, heads_q, heads_k, seq = 2, 7, 3, 19
    q = randn(batch, heads_q, seq, HEAD_DIM, dtype=dtype)
    k = randn(batch, heads_k, seq, HEAD_DIM, dtype=dtype)
    cos, sin = rope_table(seq, rotary, batch)
    cos, sin = cos.to(dtype), sin.to(dtype)
    want_q, want_k = hf_rope(q, k, cos, sin, rotary)
    if layout == "bshd":
        q_in, k_in = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()
    else:
        q_in, k_in = q.clone(), k.clone()
    cpu_q, cpu_k = ops.rope(cpu_copy(q_in), cpu_copy(k_in), cpu_copy(cos), cpu_copy(sin),
                            rotary_dim=rotary, layout=layout)
    got_q, got_k = ops.rope(q_in, k_in, cos, sin, rotary_dim=rotary, layout=layout,
                            inplace=inplace)
    got_q, got_k = on_torch(got_q), on_torch(got_k)
    assert got_q.device.type == "cuda"
    if inplace:
        assert got_q.data_ptr() == q_in.data_ptr() and got_k.data_ptr() == k_in.data_ptr()
    else:
        assert torch.equal(q_in, q if layout == "bhsd" else q.transpose(1, 2))  # input untouched
    assert relative_l2(got_q, on_torch(cpu_q)) < TOLERANCE[dtype]
    assert relative_l2(got_k, on_torch(cpu_k)) < TOLERANCE[dtype]
    if layout == "bshd":
        got_q, got_k = got_q.transpose(1, 2), got_k.transpose(1, 2)
    assert relative_l2(got_q, want_q) < TOLERANCE[dtype]
    assert relative_l2(got_k, want_k) < TOLERANCE[dtype]
    assert torch.equal(got_q[..., rotary:], q[..., rotary:])  # passed through exactly


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_in_place_on_views_of_one_qkv_buffer(interleaved):
    """q and k rotated where a fused projection left them; v, beside them, untouched."""
    batch, seq, heads_q, heads_kv = 1, 13, 4, 2
    qkv = randn(batch, seq, heads_q + 2 * heads_kv, HEAD_DIM, dtype=torch.bfloat16)
    before = qkv.clone()
    q, k = qkv[:, :, :heads_q], qkv[:, :, heads_q:heads_q + heads_kv]
    cos, sin = rope_table(seq, HEAD_DIM)
    want_q, want_k = ops.rope(cpu_copy(q), cpu_copy(k), cpu_copy(cos), cpu_copy(sin),
                              layout="bshd", interleaved=interleaved)
    ops.rope(q, k, cos, sin, layout="bshd", interleaved=interleaved, inplace=True)
    assert relative_l2(q, on_torch(want_q)) < TOLERANCE[torch.bfloat16]
    assert relative_l2(k, on_torch(want_k)) < TOLERANCE[torch.bfloat16]
    assert torch.equal(qkv[:, :, heads_q + heads_kv:], before[:, :, heads_q + heads_kv:])


# ---------------------------------------------------------------------------------------------
# Causal conv1d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [1, 4])
@pytest.mark.parametrize("activation", [None, "silu"])
def test_causal_conv1d_matches_the_cpu_op_and_torch_conv1d(dtype, width, activation):
    batch, dim, length = 2, 37, 29
    x = randn(batch, length, dim, dtype=dtype).transpose(1, 2)  # [batch, dim, L], strided
    weight = randn(dim, width) * 0.5
    bias = randn(dim) * 0.5
    out = poisoned((batch, dim, length), dtype)
    ops.causal_conv1d(x, weight, bias, activation, out=out)
    want = F.conv1d(x.double(), weight.double()[:, None], bias.double(), padding=width - 1,
                    groups=dim)[..., :length]
    if activation == "silu":
        want = F.silu(want)
    assert relative_l2(out, want) < TOLERANCE[dtype]
    want_cpu = ops.causal_conv1d(cpu_copy(x), cpu_copy(weight), cpu_copy(bias), activation)
    assert relative_l2(out, on_torch(want_cpu)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("steps", [None, 5])  # None: one [batch, dim] column
def test_causal_conv1d_update_shifts_the_callers_state(dtype, steps):
    batch, dim, width, state_len = 3, 21, 4, 4
    x = randn(batch, dim, dtype=dtype) if steps is None else randn(batch, dim, steps, dtype=dtype)
    state = randn(batch, state_len, dim, dtype=torch.float16).transpose(1, 2)  # strided, own dtype
    weight, bias = randn(dim, width) * 0.5, randn(dim) * 0.5
    cpu_state = cpu_copy(state).contiguous()
    want = ops.causal_conv1d_update(cpu_copy(x), cpu_state, cpu_copy(weight), cpu_copy(bias),
                                    "silu")
    got = ops.causal_conv1d_update(x, state, weight, bias, "silu")
    assert relative_l2(on_torch(got), on_torch(want)) < TOLERANCE[dtype]
    assert torch.equal(state.cpu(), cpu_state)  # shifted copies and stored inputs: exact


# ---------------------------------------------------------------------------------------------
# Selective scan


def negative_a(dim: int, n: int) -> torch.Tensor:
    return -torch.exp(randn(dim, n) * 0.5)


def scan_bc(layout: str, batch: int, dim: int, n: int, length: int, dtype) -> torch.Tensor:
    if layout == "channel":
        return randn(dim, n, dtype=dtype)
    if layout == "time":  # [batch, N, L] as a transposed [batch, L, N]
        return randn(batch, length, n, dtype=dtype).transpose(1, 2)
    return randn(batch, 3, length, n, dtype=dtype).transpose(2, 3)  # [batch, 3 groups, N, L]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["channel", "time", "grouped"])
@pytest.mark.parametrize("sizes", [(1, 6, 3, 7), (2, 39, 16, 70), (3, 18, 37, 33)])
def test_selective_scan_matches_the_cpu_op(dtype, layout, sizes):
    batch, dim, n, length = sizes
    u = randn(batch, length, dim, dtype=dtype).transpose(1, 2)  # strided, read in place
    delta = randn(batch, dim, length, dtype=dtype) * 0.5
    z = randn(batch, length, dim, dtype=dtype).transpose(1, 2)
    A = negative_a(dim, n)
    B = scan_bc(layout, batch, dim, n, length, dtype)
    C = scan_bc(layout, batch, dim, n, length, torch.float32)
    D = randn(dim, dtype=torch.bfloat16)
    delta_bias = randn(dim) * 0.3
    args = (u, delta, A, B, C, D, z, delta_bias)
    out = poisoned((batch, dim, length), dtype)
    got, last = ops.selective_scan(*args, delta_softplus=True, return_last_state=True, out=out)
    assert on_torch(got).data_ptr() == out.data_ptr()
    want, want_last = ops.selective_scan(*(cpu_copy(a) for a in args), delta_softplus=True,
                                         return_last_state=True)
    assert relative_l2(out, on_torch(want)) < TOLERANCE[dtype]
    assert relative_l2(on_torch(last), on_torch(want_last)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("state_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("groups", [None, 3])  # None: B and C are [batch, N]
def test_selective_state_update_updates_the_callers_state(dtype, state_dtype, groups):
    batch, dim, n = 3, 21, 16
    state = randn(batch, n, dim, dtype=state_dtype).transpose(1, 2)  # [batch, dim, N], strided
    x, dt, z = (randn(batch, dim, dtype=dtype) for _ in range(3))
    A = negative_a(dim, n)
    bc_shape = (batch, n) if groups is None else (batch, groups, n)
    B, C = randn(*bc_shape), randn(*bc_shape, dtype=dtype)
    D, dt_bias = randn(dim), randn(dim) * 0.3
    cpu_state = cpu_copy(state).contiguous()
    want = ops.selective_state_update(cpu_state, *(cpu_copy(a) for a in (x, dt, A, B, C, D, z,
                                                                         dt_bias)),
                                      dt_softplus=True)
    out = poisoned((batch, dim), dtype)
    ops.selective_state_update(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus=True, out=out)
    assert relative_l2(out, on_torch(want)) < TOLERANCE[dtype]
    assert relative_l2(state, cpu_state) < TOLERANCE[state_dtype]


def test_state_updates_over_a_sequence_equal_the_scan():
    batch, dim, n, length = 2, 10, 16, 6
    u, delta = randn(batch, dim, length), randn(batch, dim, length) * 0.5
    A, B, C = negative_a(dim, n), randn(batch, n, length), randn(batch, n, length)
    full, last = ops.selective_scan(u, delta, A, B, C, delta_softplus=True, return_last_state=True)
    state = torch.zeros(batch, dim, n, device="cuda")
    steps = [on_torch(ops.selective_state_update(state, u[..., t], delta[..., t], A, B[..., t],
                                                 C[..., t], dt_softplus=True))
             for t in range(length)]
    assert relative_l2(torch.stack(steps, dim=-1), on_torch(full)) < 1e-5
    assert relative_l2(state, on_torch(last)) < 1e-5


# ---------------------------------------------------------------------------------------------
# Arguments


def test_arguments_on_two_devices_are_a_device_error():
    x = randn(4, 8)
    with pytest.raises(DeviceError, match="x is on cuda:0, weight on cpu"):
        ops.rms_norm(x, torch.ones(8), 1e-6)
    with pytest.raises(DeviceError, match="x is on cuda:0, out on cpu"):
        ops.silu(x, out=torch.empty(4, 8))
    with pytest.raises(DeviceError, match="q is on cuda:0, cos on cpu"):
        ops.rope(randn(1, 2, 3, 8), None, torch.ones(3, 8), torch.ones(3, 8))
    with pytest.raises(DeviceError, match="x is on cuda:0, conv_state on cpu"):
        ops.causal_conv1d_update(randn(1, 3), torch.zeros(1, 3, 4), randn(3, 4))
    u = randn(1, 3, 5)
    with pytest.raises(DeviceError, match="u is on cuda:0, A on cpu"):
        ops.selective_scan(u, u, torch.ones(3, 4), randn(3, 4), randn(3, 4))


def test_cuda_arguments_get_the_cpu_ops_messages_and_outputs_must_not_alias_inputs():
    with pytest.raises(ArgumentError, match=r"rms_norm: weight must be \[hidden\] = \[8\], got \[7\]"):
        ops.rms_norm(randn(2, 8), randn(7), 1e-6)
    x = randn(1, 3, 9)
    with pytest.raises(ArgumentError, match="causal_conv1d: out shares memory with x"):
        ops.causal_conv1d(x, randn(3, 4), out=x)
    with pytest.raises(ArgumentError, match="out must have dtype F32, got BF16"):
        ops.gelu(randn(5), out=poisoned((5,), torch.bfloat16))
