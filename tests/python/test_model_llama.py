"""The native LLaMA family (llama, mistral, qwen2, qwen3) against transformers.

Every model is a tiny transformers model built from a fixed seed, its parameters redrawn so that
nothing is at its initial value (norm weights of one and zero biases would hide a norm or a bias
the native model forgot), saved with save_pretrained and loaded strictly by hfport. transformers
runs with eager attention in float32; logits must agree to a relative L2 error below 1e-5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hfport.models
import pytest
import torch
from hfport.errors import ConfigError, Error
from model_testing import redraw, relative_l2
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

VOCAB = 96
TOLERANCE = 1e-5

FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM),
}


def tiny_config(family: str, **overrides: Any) -> Any:
    config_class = FAMILIES[family][0]
    fields: dict[str, Any] = {
        "vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 80, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": None,
        "pad_token_id": 0,
    }
    if family == "qwen3":
        fields["head_dim"] = 16
    fields.update(overrides)
    config = config_class(**fields)
    config._attn_implementation = "eager"
    return config




def build(tmp_path: Path, family: str, seed: int = 0, **overrides: Any):
    torch.manual_seed(seed)
    reference = FAMILIES[family][1](tiny_config(family, **overrides)).eval()
    redraw(reference, seed)
    folder = tmp_path / family
    reference.save_pretrained(folder)
    native = hfport.models.from_pretrained(folder)
    return reference, native



def token_ids(batch: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def check_logits(reference: torch.nn.Module, native: Any, ids: torch.Tensor) -> None:
    with torch.no_grad():
        expected = reference(ids).logits
    actual = torch.from_dlpack(native(ids).logits)
    assert actual.shape == expected.shape
    assert relative_l2(actual, expected) < TOLERANCE


LLAMA_CASES = {
    "gqa": {},
    "mha_tied": {"num_key_value_heads": 4, "tie_word_embeddings": True},
    "mqa": {"num_key_value_heads": 1},
    "biases": {"attention_bias": True, "mlp_bias": True},
    "llama3": {"rope_parameters": {
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}},
    "yarn": {"rope_parameters": {
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
        "original_max_position_embeddings": 32}},
    "linear": {"rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}},
    # max_position_embeddings below the sequence, so the frequencies really change.
    "dynamic": {"max_position_embeddings": 8, "rope_parameters": {
        "rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}},
    # The sequence (13) is past original_max_position_embeddings: the long factors apply.
    "longrope": {"max_position_embeddings": 64, "rope_parameters": {
        "rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 8,
        "short_factor": [1.0 + 0.1 * i for i in range(8)],
        "long_factor": [1.0 + 0.5 * i for i in range(8)]}},
}


@pytest.mark.parametrize("case", sorted(LLAMA_CASES))
def test_llama_logits(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, "llama", seed=1, **LLAMA_CASES[case])
    assert native.family == "llama"
    check_logits(reference, native, token_ids(2, 13, seed=2))


def test_mistral_sliding_window_shorter_than_sequence(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "mistral", seed=3, sliding_window=5)
    ids = token_ids(2, 17, seed=4)
    check_logits(reference, native, ids)
    # The window is in effect: without it transformers computes something else.
    with torch.no_grad():
        windowed = reference(ids).logits
        reference.config.sliding_window = None
        full = reference(ids).logits
    assert relative_l2(full, windowed) > 1e-3


@pytest.mark.parametrize("sliding", [False, True])
def test_qwen2_biases(tmp_path: Path, sliding: bool) -> None:
    # With use_sliding_window, layers from max_window_layers on slide (config.layer_types).
    extra = ({"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1}
             if sliding else {})
    reference, native = build(tmp_path, "qwen2", seed=5, **extra)
    assert reference.model.layers[0].self_attn.q_proj.bias is not None
    if sliding:
        assert reference.config.layer_types == ["full_attention"] + 2 * ["sliding_attention"]
    check_logits(reference, native, token_ids(2, 11, seed=6))


def test_qwen3_q_k_norm(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "qwen3", seed=7)
    assert reference.model.layers[0].self_attn.q_norm is not None
    check_logits(reference, native, token_ids(2, 11, seed=8))


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_padded_batch(tmp_path: Path, family: str) -> None:
    extra = {"sliding_window": 6} if family == "mistral" else {}
    reference, native = build(tmp_path, family, seed=9, **extra)
    ids = token_ids(3, 12, seed=10)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0   # left padding
    mask[2, 7:] = 0   # right padding
    ids = ids.masked_fill(mask == 0, 0)
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask).logits
    actual = torch.from_dlpack(native(ids, attention_mask=mask).logits)
    keep = mask.bool()
    assert relative_l2(actual[keep], expected[keep]) < TOLERANCE
    # The mask is applied: the right-padded row's kept logits equal an unpadded run of its prefix.
    prefix = torch.from_dlpack(native(ids[2:3, :7]).logits)
    assert relative_l2(actual[2, :7], prefix[0]) < TOLERANCE


def test_hidden_states_per_layer(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "qwen3", seed=11)
    ids = token_ids(2, 9, seed=12)
    with torch.no_grad():
        expected = reference(ids, output_hidden_states=True)
    out = native(ids, output_hidden_states=True)
    logits, hidden = out.logits, out.hidden_states
    assert len(hidden) == len(expected.hidden_states) == 4  # embeddings + 3 layers
    for layer, (mine, theirs) in enumerate(zip(hidden, expected.hidden_states)):
        assert relative_l2(torch.from_dlpack(mine), theirs) < TOLERANCE, f"entry {layer}"
    assert relative_l2(torch.from_dlpack(logits), expected.logits) < TOLERANCE


@pytest.mark.parametrize("family", ["llama", "qwen3", "mistral"])
def test_greedy_generate_matches_transformers(tmp_path: Path, family: str) -> None:
    # Mistral's window (6) is shorter than prompt + new tokens, so decoding must slide it.
    extra = {"sliding_window": 6} if family == "mistral" else {}
    reference, native = build(tmp_path, family, seed=13, **extra)
    ids = token_ids(2, 7, seed=14)
    with torch.no_grad():
        expected = reference.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=32, eos_token_id=None, pad_token_id=0)
    assert expected.shape == (2, 7 + 32)
    actual = torch.from_dlpack(native.generate(ids, max_new_tokens=32))
    assert actual.tolist() == expected.tolist()


def test_unsupported_activation_is_a_config_error(tmp_path: Path) -> None:
    model = LlamaForCausalLM(tiny_config("llama", hidden_act="gelu"))
    model.save_pretrained(tmp_path / "gelu")
    with pytest.raises(ConfigError, match="hidden_act \"gelu\" is not supported"):
        hfport.models.from_pretrained(tmp_path / "gelu")


def test_token_outside_vocabulary_is_named(tmp_path: Path) -> None:
    _, native = build(tmp_path, "llama", seed=15)
    ids = torch.tensor([[3, VOCAB + 4]])
    with pytest.raises(Error, match=rf"input_ids\[0, 1\] = {VOCAB + 4} is outside the vocabulary "
                       rf"\[0, {VOCAB}\)"):
        native(ids)


def test_one_segment_token_types_are_accepted_others_refused(tmp_path: Path) -> None:
    """A tokenizer may hand a decoder all-zero token_type_ids (one segment): they change nothing.
    Other types have no embedding in this family and are refused by name."""
    _, native = build(tmp_path, "llama", seed=18)
    ids = token_ids(2, 6, seed=19)
    plain = torch.from_dlpack(native(ids).logits)
    zeros = torch.from_dlpack(native(ids, token_type_ids=torch.zeros_like(ids)).logits)
    assert torch.equal(plain, zeros)
    types = torch.zeros_like(ids)
    types[1, 4] = 1
    with pytest.raises(Error, match=r"token_type_ids\[1, 4\] = 1, but this family has no "
                       "token-type embeddings"):
        native(ids, token_type_ids=types)


def test_output_reads_by_name_attribute_and_position(tmp_path: Path) -> None:
    """ModelOutput as transformers': keys in its order, attributes, positions, None for a field
    that was not computed, AttributeError naming the fields for anything else."""
    reference, native = build(tmp_path, "llama", seed=20)
    ids = token_ids(1, 5, seed=21)
    out = native(ids, output_hidden_states=True)
    assert list(out) == ["logits", "last_hidden_state", "hidden_states"]
    assert out[0] is out.logits is out["logits"] and out[-1] is out.hidden_states
    assert isinstance(out.hidden_states, tuple) and len(out.hidden_states) == 4
    assert out.pooler_output is None
    with torch.no_grad():
        expected = reference(ids)
    assert relative_l2(torch.from_dlpack(out.logits), expected.logits) < TOLERANCE
    with pytest.raises(AttributeError, match="no field 'logit' .it has logits, last_hidden_state"):
        out.logit  # noqa: B018


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_parameters(tmp_path: Path, dtype: str) -> None:
    reference, _ = build(tmp_path, "llama", seed=16)
    native = hfport.models.from_pretrained(tmp_path / "llama", dtype=dtype)
    ids = token_ids(1, 10, seed=17)
    reference = reference.to(getattr(torch, dtype))
    with torch.no_grad():
        expected = reference(ids).logits
    actual = torch.from_dlpack(native(ids).logits)
    assert actual.dtype == expected.dtype
    # One rounding of every activation to 8 (bf16) or 11 (f16) bits, in a different order.
    assert relative_l2(actual, expected) < 3e-2
    generated = torch.from_dlpack(native.generate(ids, max_new_tokens=3))
    assert generated[0, 10].item() == actual[0, -1].float().argmax().item()
