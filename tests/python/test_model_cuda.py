"""The native LLaMA family and Mamba on a GPU, against transformers on the same GPU.

The tiny models of test_model_llama.py / test_model_mamba_gpt2.py, saved and loaded with
device="cuda": logits, the padded batch, hidden states and greedy decoding through the device
caches must match transformers run on CUDA (float32: relative L2 < 1e-5 as on the CPU; bf16 within
the bf16 bound the CPU tests use). Families without a CUDA forward, and every machine without a
device, get DeviceError naming why; those tests run everywhere.
"""

from __future__ import annotations

from pathlib import Path

import hfport
import hfport.models
import pytest
import torch
from cuda_testing import HAS_CUDA, needs_cuda
from hfport.errors import DeviceError
from model_testing import relative_l2
from test_model_llama import build as build_llama
from test_model_llama import token_ids
from test_model_mamba_gpt2 import (
    MAMBA_CASES,
    check_forward,
    check_generate,
    gpt2_config,
    mamba_config,
)
from test_model_mamba_gpt2 import build as build_other
from transformers import GPT2LMHeadModel, MambaForCausalLM

F32_TOLERANCE = 1e-5


def on_cuda(reference: torch.nn.Module, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    return reference.to(device="cuda", dtype=dtype)


def native_on_cuda(folder: Path, dtype: str = "float32") -> hfport.models.Model:
    return hfport.models.from_pretrained(folder, dtype=dtype, device="cuda")


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is visible here")
def test_cuda_model_without_a_device_says_why(tmp_path: Path) -> None:
    build_llama(tmp_path, "llama", seed=30)
    with pytest.raises(DeviceError, match="cuda:0"):
        native_on_cuda(tmp_path / "llama")


@needs_cuda
def test_host_only_family_refuses_cuda(tmp_path: Path) -> None:
    build_other(tmp_path, GPT2LMHeadModel, gpt2_config(), seed=31)
    with pytest.raises(DeviceError, match="gpt2 model: runs on the CPU only"):
        native_on_cuda(tmp_path / "model")


@needs_cuda
@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3"])
def test_llama_family_logits_on_cuda(tmp_path: Path, family: str) -> None:
    extra = {"sliding_window": 6} if family == "mistral" else {}
    reference, _ = build_llama(tmp_path, family, seed=32, **extra)
    native = native_on_cuda(tmp_path / family)
    ids = token_ids(2, 13, seed=33)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding on the second row
    with torch.no_grad():
        expected = on_cuda(reference)(ids.cuda(), attention_mask=mask.cuda()).logits
    out = native(ids.cuda(), attention_mask=mask.cuda())
    actual = torch.from_dlpack(out)
    assert actual.device.type == "cuda"
    keep = mask.bool().cuda()
    assert relative_l2(actual[keep], expected[keep]) < F32_TOLERANCE


@needs_cuda
def test_llama_bf16_on_cuda(tmp_path: Path) -> None:
    reference, _ = build_llama(tmp_path, "llama", seed=34)
    native = native_on_cuda(tmp_path / "llama", dtype="bfloat16")
    ids = token_ids(1, 10, seed=35)
    with torch.no_grad():
        expected = on_cuda(reference, torch.bfloat16)(ids.cuda()).logits
    actual = torch.from_dlpack(native(ids).logits)
    assert actual.dtype == torch.bfloat16
    assert relative_l2(actual, expected) < 3e-2  # the bound of the CPU bf16 test


@needs_cuda
@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_llama_family_generate_on_cuda(tmp_path: Path, family: str) -> None:
    extra = {"sliding_window": 6} if family == "mistral" else {}
    reference, _ = build_llama(tmp_path, family, seed=36, **extra)
    native = native_on_cuda(tmp_path / family)
    ids = token_ids(2, 7, seed=37)
    with torch.no_grad():
        expected = on_cuda(reference).generate(
            ids.cuda(), attention_mask=torch.ones_like(ids).cuda(), do_sample=False,
            max_new_tokens=24, eos_token_id=None, pad_token_id=0)
    actual = torch.from_dlpack(native.generate(ids, max_new_tokens=24))
    assert actual.tolist() == expected.tolist()


@needs_cuda
@pytest.mark.parametrize("case", sorted(MAMBA_CASES))
def test_mamba_on_cuda(tmp_path: Path, case: str) -> None:
    reference, _ = build_other(tmp_path, MambaForCausalLM, mamba_config(**MAMBA_CASES[case]),
                               seed=38)
    native = native_on_cuda(tmp_path / "model")
    reference = on_cuda(reference)
    ids = token_ids(2, 11, seed=39).cuda()
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    check_forward(reference, native, ids)
    check_forward(reference, native, ids, mask, only_kept=True)
    check_generate(reference, native, ids)
