"""hfport.ops norms, activations and linear against transformers' modules, torch and float64.

Fresh random inputs each run (never zeros); float32 relative L2 error under 1e-5, bf16 under 1e-2.
"""

from __future__ import annotations

import hfport
import pytest
import torch
import torch.nn.functional as F
from hfport import ops
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm

F32_TOL = 1e-5
BF16_TOL = 1e-2
SHAPES = [(1, 7), (3, 5, 64), (2, 33, 100)]


def rel_l2(got, want: torch.Tensor) -> float:
    got = torch.from_dlpack(got) if not isinstance(got, torch.Tensor) else got
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm()).item()


def llama_norm(hidden: int, dtype: torch.dtype, eps: float) -> LlamaRMSNorm:
    norm = LlamaRMSNorm(hidden, eps=eps).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(hidden) * 0.5 + 1)
    return norm.requires_grad_(False)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_matches_llama_rms_norm(shape, dtype):
    norm = llama_norm(shape[-1], dtype, 1e-5)
    x = torch.randn(shape).to(dtype)
    got = ops.rms_norm(x, norm.weight, 1e-5)
    assert torch.from_dlpack(got).dtype == dtype
    want = norm(x)
    if dtype == torch.float32:
        assert rel_l2(got, want) < F32_TOL
    else:  # same two roundings as LlamaRMSNorm: equal up to the last bf16 bit
        assert rel_l2(got, want) < 1e-3
        x64 = x.double()
        exact = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight.double()
        assert rel_l2(got, exact) < BF16_TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_unit_offset_matches_gemma_rms_norm(dtype):
    norm = GemmaRMSNorm(48, eps=1e-6).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(48) * 0.3)
    norm.requires_grad_(False)
    x = torch.randn(4, 9, 48).to(dtype)
    got = ops.rms_norm(x, norm.weight, 1e-6, add_unit_offset=True)
    assert rel_l2(got, norm(x)) < (F32_TOL if dtype == torch.float32 else 1e-3)


def test_rms_norm_fused_residual_returns_norm_and_sum():
    norm = llama_norm(40, torch.float32, 1e-6)
    x, residual = torch.randn(3, 7, 40), torch.randn(3, 7, 40)
    out, total = ops.rms_norm(x, norm.weight, 1e-6, residual=residual)
    assert torch.equal(torch.from_dlpack(total), x + residual)
    assert rel_l2(out, norm(x + residual)) < F32_TOL


def test_rms_norm_non_contiguous_input():
    norm = llama_norm(24, torch.float32, 1e-6)
    x = torch.randn(24, 10).t()  # [10, 24] with stride (1, 10)
    assert rel_l2(ops.rms_norm(x, norm.weight, 1e-6), norm(x)) < F32_TOL


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(shape, dtype, affine):
    hidden = shape[-1]
    x = (torch.randn(shape) * 2 + 0.5).to(dtype)
    weight = (torch.randn(hidden) + 1).to(dtype) if affine else None
    bias = torch.randn(hidden).to(dtype) if affine else None
    got = ops.layer_norm(x, weight, bias, 1e-5)
    want64 = F.layer_norm(x.double(), (hidden,), None if weight is None else weight.double(),
                          None if bias is None else bias.double(), 1e-5)
    if dtype == torch.float32:
        assert rel_l2(got, want64) < F32_TOL
        assert rel_l2(got, F.layer_norm(x, (hidden,), weight, bias, 1e-5)) < F32_TOL
    else:
        assert rel_l2(got, want64) < BF16_TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(dtype, approximate):
    x = (torch.randn(5, 301) * 3).to(dtype)
    got = ops.gelu(x, approximate)
    want = F.gelu(x.double(), approximate=approximate)
    assert rel_l2(got, want) < (F32_TOL if dtype == torch.float32 else BF16_TOL)
    if dtype == torch.float32:
        assert rel_l2(got, F.gelu(x, approximate=approximate)) < F32_TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_silu_and_swiglu_match_torch(dtype):
    gate, up = (torch.randn(7, 129) * 4).to(dtype), torch.randn(7, 129).to(dtype)
    tol = F32_TOL if dtype == torch.float32 else BF16_TOL
    assert rel_l2(ops.silu(gate), F.silu(gate.double())) < tol
    assert rel_l2(ops.swiglu(gate, up), F.silu(gate.double()) * up.double()) < tol
    strided = gate.t()  # non-contiguous input
    assert rel_l2(ops.silu(strided), F.silu(strided.double())) < tol


@pytest.mark.parametrize("x_shape", [(5, 37), (2, 3, 64), (1, 1)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_torch(x_shape, with_bias):
    n_in, n_out = x_shape[-1], 23
    x, weight = torch.randn(x_shape), torch.randn(n_out, n_in)
    bias = torch.randn(n_out) if with_bias else None
    got = ops.linear(x, weight, bias)
    assert tuple(got.shape) == (*x_shape[:-1], n_out)
    bias64 = None if bias is None else bias.double()
    assert rel_l2(got, F.linear(x.double(), weight.double(), bias64)) < F32_TOL
    assert rel_l2(got, F.linear(x, weight, bias)) < F32_TOL


def test_linear_transposed_weight_view_and_strided_x():
    x = torch.randn(40, 9).t()                  # [9, 40], non-contiguous
    w_in_out = torch.randn(40, 31)              # GPT-2 Conv1D layout [in, out]
    weight = w_in_out.t()                       # [out, in] view, stride (1, 31)
    sliced = torch.randn(31, 80)[:, ::2]        # [out, in] with a column stride of 2: copied
    bias = torch.randn(31)
    want = F.linear(x.double(), weight.double(), bias.double())
    assert rel_l2(ops.linear(x, weight, bias), want) < F32_TOL
    assert rel_l2(ops.linear(x, sliced), F.linear(x.double(), sliced.double())) < F32_TOL


def test_linear_bf16():
    x, weight, bias = torch.randn(6, 50).bfloat16(), torch.randn(20, 50).bfloat16(), torch.randn(20)
    got = ops.linear(x, weight, bias)
    assert torch.from_dlpack(got).dtype == torch.bfloat16
    assert rel_l2(got, F.linear(x.double(), weight.double(), bias.double())) < BF16_TOL


def test_numpy_inputs_without_torch():
    x, weight = torch.randn(4, 8).numpy(), torch.randn(8).numpy()
    got = torch.from_dlpack(ops.rms_norm(x, weight, 1e-6))
    x64, w64 = torch.from_numpy(x).double(), torch.from_numpy(weight).double()
    assert rel_l2(got, x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-6) * w64) < F32_TOL


def test_out_argument_is_written_in_place():
    x, weight = torch.randn(3, 16), torch.randn(5, 16)
    out = torch.full((3, 5), float("nan"))
    result = ops.linear(x, weight, out=out)
    assert torch.from_dlpack(result).data_ptr() == out.data_ptr()
    assert rel_l2(out, F.linear(x.double(), weight.double())) < F32_TOL


def test_errors_name_the_argument_and_the_expectation():
    x = torch.randn(4, 16)
    error = hfport.errors.Error
    with pytest.raises(error, match=r"rms_norm: weight must be \[hidden\] = \[16\], got \[15\]"):
        ops.rms_norm(x, torch.randn(15))
    with pytest.raises(error, match=r"rms_norm: residual must be x's shape = \[4, 16\]"):
        ops.rms_norm(x, torch.randn(16), residual=torch.randn(4, 15))
    with pytest.raises(error, match=r"linear: weight must be \[out, in\] = \[8, 16\], got \[8, 15"):
        ops.linear(x, torch.randn(8, 15))
    with pytest.raises(error, match=r"linear: weight must have the dtype of x \(F32\), got BF16"):
        ops.linear(x, torch.randn(8, 16).bfloat16())
    with pytest.raises(error, match=r"gelu: approximate must be \"none\" or \"tanh\""):
        ops.gelu(x, "erf")
    with pytest.raises(error, match=r"swiglu: up must be gate's shape = \[4, 16\]"):
        ops.swiglu(x, torch.randn(4, 8))
    with pytest.raises(error, match=r"out must have dtype F32, got F64"):
        ops.silu(x, out=torch.empty(4, 16, dtype=torch.float64))


def test_linear_refuses_an_output_that_is_its_input():
    x = torch.randn(4, 4)
    w = torch.randn(4, 4)
    with pytest.raises(hfport.errors.ArgumentError, match="linear: out shares memory with x"):
        ops.linear(x, w, out=x)


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_linear_activation_matches_torch(activation, dtype):
    x, weight = (torch.randn(5, 37) * 2).to(dtype), torch.randn(23, 37).to(dtype)
    bias = torch.randn(23).to(dtype)
    approximate = "tanh" if activation == "gelu_tanh" else "none"
    want = F.gelu(F.linear(x.double(), weight.double(), bias.double()), approximate=approximate)
    out = torch.full((5, 23), float("nan"), dtype=dtype)
    ops.linear(x, weight, bias, activation=activation, out=out)
    assert rel_l2(out, want) < (F32_TOL if dtype == torch.float32 else BF16_TOL)
    # The two GELUs differ by about 1e-5 (relative L2) here: in f32, each option lands much closer
    # to its own GELU than to the other.
    other = F.gelu(F.linear(x.double(), weight.double(), bias.double()),
                   approximate="none" if approximate == "tanh" else "tanh")
    if dtype == torch.float32:
        assert rel_l2(out, other) > 10 * rel_l2(out, want)


def test_linear_activation_none_and_tf32_flag_leave_the_cpu_result_alone():
    x, weight = torch.randn(4, 19), torch.randn(7, 19)
    want = F.linear(x.double(), weight.double())
    assert rel_l2(ops.linear(x, weight, activation=None), want) < F32_TOL
    assert rel_l2(ops.linear(x, weight, activation="none", allow_tf32=True), want) < F32_TOL


def test_linear_refuses_an_unknown_activation():
    with pytest.raises(hfport.errors.ArgumentError,
                       match=r'linear: activation must be "none", "gelu" \(erf\) or "gelu_tanh", '
                             r'got "relu"'):
        ops.linear(torch.randn(2, 4), torch.randn(3, 4), activation="relu")
