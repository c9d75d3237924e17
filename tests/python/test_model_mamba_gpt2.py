"""The native Mamba-1 and GPT-2 models against transformers.

Each model is a tiny transformers model built from a fixed seed with every parameter redrawn away
from its initial value (norm weights of one, zero biases and D = 1 would hide a term the native
model forgot), saved with save_pretrained and loaded strictly by hfport. transformers runs in
float32 (GPT-2 with eager attention; Mamba on its PyTorch path, the only one a CPU has); logits
and every hidden state must agree to a relative L2 error below 1e-5, and greedy decoding through
the native cache must give transformers' generate(do_sample=False) tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hfport.models
import pytest
import torch
import transformers
from hfport.errors import ArgumentError, Error
from model_testing import redraw, relative_l2
from transformers import GPT2Config, GPT2LMHeadModel, MambaConfig, MambaForCausalLM

transformers.utils.logging.set_verbosity_error()

VOCAB = 80
TOLERANCE = 1e-5



def token_ids(batch: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))




def build(tmp_path: Path, model_class: Any, config: Any, seed: int) -> tuple[Any, Any]:
    torch.manual_seed(seed)
    reference = model_class(config).eval()
    redraw(reference, seed)
    folder = tmp_path / "model"
    reference.save_pretrained(folder)
    return reference, hfport.models.from_pretrained(folder)


def check_forward(reference: Any, native: Any, ids: torch.Tensor,
                  mask: torch.Tensor | None = None, only_kept: bool = False) -> None:
    """Logits and every hidden state; `only_kept`: compare unpadded positions alone."""
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, output_hidden_states=True)
    out = native.forward(ids, attention_mask=mask, output_hidden_states=True)
    keep = mask.bool() if only_kept else torch.ones_like(ids, dtype=torch.bool)
    logits = torch.from_dlpack(out["logits"])
    assert logits.shape == expected.logits.shape
    assert relative_l2(logits[keep], expected.logits[keep]) < TOLERANCE
    hidden = out["hidden_states"]
    assert len(hidden) == len(expected.hidden_states)
    for i, (mine, theirs) in enumerate(zip(hidden, expected.hidden_states)):
        assert relative_l2(torch.from_dlpack(mine)[keep], theirs[keep]) < TOLERANCE, f"entry {i}"


def check_generate(reference: Any, native: Any, ids: torch.Tensor) -> None:
    with torch.no_grad():
        expected = reference.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=32, eos_token_id=None, pad_token_id=0)
    assert expected.shape == (ids.shape[0], ids.shape[1] + 32)
    # A run that settles on one repeated token would match with a broken cache too.
    assert all(len(set(row[ids.shape[1]:].tolist())) >= 4 for row in expected)
    actual = torch.from_dlpack(native.generate(ids, max_new_tokens=32))
    assert actual.tolist() == expected.tolist()


# ---------------------------------------------------------------------------------------------
# Mamba

def mamba_config(**overrides: Any) -> MambaConfig:
    fields: dict[str, Any] = {
        "vocab_size": VOCAB, "hidden_size": 32, "state_size": 8, "num_hidden_layers": 3,
        "conv_kernel": 4, "expand": 2, "layer_norm_epsilon": 1e-5, "bos_token_id": 1,
        "eos_token_id": None, "pad_token_id": 0,
    }
    fields.update(overrides)
    return MambaConfig(**fields)


MAMBA_CASES = {
    # dt_rank given; conv bias; head tied to the embeddings.
    "dt_rank_given": {"time_step_rank": 5, "use_conv_bias": True},
    # dt_rank "auto" (ceil(hidden / 16) = 2); no conv bias; in/out projection biases; own head.
    "dt_rank_auto": {"time_step_rank": "auto", "use_conv_bias": False, "use_bias": True,
                     "tie_word_embeddings": False},
}


@pytest.mark.parametrize("case", sorted(MAMBA_CASES))
def test_mamba_logits_and_hidden_states(tmp_path: Path, case: str) -> None:
    config = mamba_config(**MAMBA_CASES[case])
    reference, native = build(tmp_path, MambaForCausalLM, config, seed=1)
    assert native.family == "mamba"
    if case == "dt_rank_auto":
        assert reference.config.time_step_rank == 2
        assert reference.backbone.layers[0].mixer.conv1d.bias is None
    # MambaModel's tuple: each block's output, then norm_f of the last (layers + 1 entries).
    check_forward(reference, native, token_ids(2, 13, seed=2))


def test_mamba_padded_batch(tmp_path: Path) -> None:
    # transformers zeroes padded positions before in_proj and after the conv; so does hfport.
    reference, native = build(tmp_path, MambaForCausalLM, mamba_config(), seed=3)
    ids = token_ids(2, 12, seed=4)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[1, 9:] = 0
    check_forward(reference, native, ids, mask)
    # The mask changes the result (the test would not notice a native model that ignored it).
    plain = torch.from_dlpack(native(ids).logits)
    masked = torch.from_dlpack(native(ids, attention_mask=mask).logits)
    assert relative_l2(plain[0, 3:], masked[0, 3:]) > 1e-3


@pytest.mark.parametrize("case", sorted(MAMBA_CASES))
def test_mamba_greedy_generate_matches_transformers(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, MambaForCausalLM, mamba_config(**MAMBA_CASES[case]),
                              seed=5)
    check_generate(reference, native, token_ids(2, 7, seed=6))


# ---------------------------------------------------------------------------------------------
# GPT-2

def gpt2_config(**overrides: Any) -> GPT2Config:
    fields: dict[str, Any] = {
        "vocab_size": VOCAB, "n_embd": 32, "n_layer": 3, "n_head": 4, "n_positions": 64,
        "bos_token_id": 1, "eos_token_id": None, "pad_token_id": 0,
    }
    fields.update(overrides)
    config = GPT2Config(**fields)
    config._attn_implementation = "eager"
    return config


GPT2_CASES = {
    # Tied head, n_inner = 4 n_embd, gelu_new.
    "tied": {},
    # Own head, n_inner given, exact gelu, the scale divided by layer + 1.
    "n_inner_untied": {"n_inner": 48, "tie_word_embeddings": False, "activation_function": "gelu",
                       "scale_attn_by_inverse_layer_idx": True},
}


@pytest.mark.parametrize("case", sorted(GPT2_CASES))
def test_gpt2_logits_and_hidden_states(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, GPT2LMHeadModel, gpt2_config(**GPT2_CASES[case]), seed=7)
    assert native.family == "gpt2"
    if case == "n_inner_untied":
        assert reference.transformer.h[0].mlp.c_fc.weight.shape == (32, 48)
        assert reference.lm_head.weight.data_ptr() != reference.transformer.wte.weight.data_ptr()
    # Embeddings, blocks 0..L-2, ln_f of the last block (layers + 1 entries).
    check_forward(reference, native, token_ids(2, 11, seed=8))


def test_gpt2_padded_batch(tmp_path: Path) -> None:
    reference, native = build(tmp_path, GPT2LMHeadModel, gpt2_config(), seed=9)
    ids = token_ids(3, 12, seed=10)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0   # left padding: positions still arange(seq), as GPT2Model.forward
    mask[2, 7:] = 0   # right padding
    check_forward(reference, native, ids, mask, only_kept=True)
    # The padding is masked: a left-padded row's kept logits differ from an unmasked run.
    plain = torch.from_dlpack(native(ids).logits)
    masked = torch.from_dlpack(native(ids, attention_mask=mask).logits)
    assert relative_l2(plain[1, 4:], masked[1, 4:]) > 1e-3


@pytest.mark.parametrize("case", sorted(GPT2_CASES))
def test_gpt2_greedy_generate_matches_transformers(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, GPT2LMHeadModel, gpt2_config(**GPT2_CASES[case]), seed=11)
    check_generate(reference, native, token_ids(2, 6, seed=12))


# ---------------------------------------------------------------------------------------------
# Errors

def test_errors_name_the_problem(tmp_path: Path) -> None:
    _, gpt2 = build(tmp_path / "gpt2", GPT2LMHeadModel, gpt2_config(n_positions=16), seed=13)
    with pytest.raises(ArgumentError, match=r"input_ids\[0, 2\] = 80 is outside the vocabulary"):
        gpt2(torch.tensor([[1, 2, VOCAB]]))
    with pytest.raises(ArgumentError, match="16 learned positions"):
        gpt2(token_ids(1, 17, seed=14))
    with pytest.raises(ArgumentError, match="16 learned positions"):
        gpt2.generate(token_ids(1, 10, seed=14), max_new_tokens=7)
    with pytest.raises(ArgumentError, match="attention_mask must have input_ids' shape"):
        gpt2(token_ids(2, 5, seed=15), attention_mask=torch.ones(2, 4, dtype=torch.long))
    _, mamba = build(tmp_path / "mamba", MambaForCausalLM, mamba_config(), seed=16)
    with pytest.raises(ArgumentError, match="attention_mask holds 2"):
        mamba(token_ids(1, 3, seed=17), attention_mask=torch.tensor([[1, 2, 1]]))
    with pytest.raises(Error, match="input_ids must be I64 or I32"):
        mamba(torch.zeros(1, 3, dtype=torch.float32))
