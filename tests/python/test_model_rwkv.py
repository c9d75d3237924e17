"""The native RWKV-4 model against transformers' RwkvForCausalLM and RwkvModel, under transformers'
names (`rwkv`) and BlinkDL's (`rwkv_original`, the same weights renamed as RWKV-LM saves them).

Each model is a tiny transformers model built from a fixed seed with every parameter redrawn away
from its initial value (model_testing.redraw), saved with save_pretrained and loaded strictly by
hfport. transformers runs in float32 on its CPU path (rwkv_linear_attention_cpu), in eval mode, so
with the inference rescaling (rescale_every) applied. Logits and every hidden state must agree to a
relative L2 error below 1e-5 (hfport.parity.compare), greedy decoding through the native cache must
give transformers' generate(do_sample=False) tokens, and the native cache must agree with the
native full forward (the logit-level check is tests/cpp/test_model_recurrent.cpp).

transformers' own cached decoding is right for a batch of one only: its one-token step mixes a
[batch, hidden] token-shift state into [batch, 1, hidden] activations and broadcasts them to
[batch, batch, hidden] (modeling_rwkv.RwkvSelfAttention.extract_key_value), so each row of a
larger batch reads the last row's shift. Batched decoding is therefore checked against transformers'
generate run one row at a time. Its state is also hidden_size wide whatever attention_hidden_size
is, so with a narrower attention transformers runs only without a cache (use_cache=False, which
hfport.parity.compare passes for RWKV) and cannot generate at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hfport
import hfport.models
import pytest
import torch
import transformers
from hfport.errors import ArgumentError, ConfigError
from model_testing import redraw, relative_l2
from safetensors.torch import save_file
from transformers import RwkvConfig, RwkvForCausalLM, RwkvModel

transformers.utils.logging.set_verbosity_error()

VOCAB = 80
TOLERANCE = 1e-5


def token_ids(batch: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def rwkv_config(**overrides: Any) -> RwkvConfig:
    fields: dict[str, Any] = {
        "vocab_size": VOCAB, "hidden_size": 33, "num_hidden_layers": 4, "intermediate_size": 50,
        "context_length": 64, "layer_norm_epsilon": 1e-5, "rescale_every": 2,
        "bos_token_id": 1, "eos_token_id": None, "pad_token_id": 0,
    }
    fields.update(overrides)
    return RwkvConfig(**fields)


CASES = {
    # Odd hidden size; rescale every 2 blocks (the hidden state halves twice in 4); own head.
    "odd_hidden_rescale_2": {},
    # No rescaling; head tied to the embeddings.
    "no_rescale_tied": {"rescale_every": 0, "tie_word_embeddings": True},
    # attention_hidden_size (k, v, r and the WKV) narrower than hidden; rescale every block.
    "attention_24_rescale_1": {"attention_hidden_size": 24, "rescale_every": 1},
}


def build(tmp_path: Path, config: RwkvConfig, seed: int,
          model_class: Any = RwkvForCausalLM) -> tuple[Any, Any]:
    torch.manual_seed(seed)
    reference = model_class(config).eval()
    redraw(reference, seed)
    folder = tmp_path / "model"
    reference.save_pretrained(folder)
    return reference, hfport.models.from_pretrained(folder)


@pytest.mark.parametrize("case", sorted(CASES))
def test_logits_and_every_hidden_state(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, rwkv_config(**CASES[case]), seed=1)
    assert native.family == "rwkv"
    report = hfport.parity.compare(native, reference, token_ids(2, 13, seed=2))
    # RwkvModel's tuple: each block's output (rescaled), then ln_out of the last; then the logits.
    assert [row.name for row in report.rows] == ["layers.0", "layers.1", "layers.2", "layers.3",
                                                 "ln_out", "logits"]
    assert report.ok, str(report)
    assert max(row.rel_l2 for row in report.rows) < TOLERANCE
    if case == "odd_hidden_rescale_2":
        # The rescaling is visible in the hidden states, so the rows above test it.
        assert reference.rwkv.layers_are_rescaled


def test_base_model_returns_last_hidden_state(tmp_path: Path) -> None:
    reference, native = build(tmp_path, rwkv_config(), seed=3, model_class=RwkvModel)
    assert native.head == ""
    assert "logits" not in native.forward(token_ids(1, 5, seed=4))
    report = hfport.parity.compare(native, reference, token_ids(2, 9, seed=4))
    assert "last_hidden_state" in [row.name for row in report.rows]
    assert report.ok, str(report)


# BlinkDL RWKV-4 (RWKV-LM) names of transformers' parameters: the inverse of transformers'
# convert_rwkv_checkpoint_to_hf renames.
def blinkdl_name(name: str) -> str:
    name = name.removeprefix("rwkv.")
    name = name.replace("embeddings.weight", "emb.weight").replace("pre_ln", "ln0")
    name = name.replace(".attention.", ".att.").replace(".feed_forward.", ".ffn.")
    for long, short in (("time_mix_key", "time_mix_k"), ("time_mix_value", "time_mix_v"),
                        ("time_mix_receptance", "time_mix_r")):
        name = name.replace(long, short)
    return name


@pytest.mark.parametrize("case", ["odd_hidden_rescale_2", "attention_24_rescale_1"])
def test_blinkdl_names_run_through_the_same_model(tmp_path: Path, case: str) -> None:
    reference, _ = build(tmp_path, rwkv_config(**CASES[case]), seed=5)
    folder = tmp_path / "blinkdl"
    folder.mkdir()
    state = {blinkdl_name(k): v.detach().clone().contiguous()
             for k, v in reference.state_dict().items()}
    assert "blocks.0.att.time_mix_k" in state and "blocks.0.ln0.weight" in state
    save_file(state, folder / "model.safetensors")
    config = reference.config
    (folder / "config.json").write_text(json.dumps({
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "attention_hidden_size": config.attention_hidden_size,
        "intermediate_size": config.intermediate_size, "rescale_every": config.rescale_every}))
    native = hfport.models.from_pretrained(folder, family="rwkv_original")
    assert native.family == "rwkv_original"
    ids = token_ids(2, 11, seed=6)
    report = hfport.parity.compare(native, reference, ids)
    assert report.rows[-2].name == "ln_out"
    assert report.ok, str(report)
    # Decoding as under transformers' names (which test_greedy_generate_matches_transformers pins
    # to transformers' generate; transformers itself cannot decode with a narrower attention).
    same_weights = hfport.models.from_pretrained(tmp_path / "model")
    assert torch.from_dlpack(native.generate(ids, max_new_tokens=16)).tolist() == \
        torch.from_dlpack(same_weights.generate(ids, max_new_tokens=16)).tolist()


def greedy_reference(reference: Any, ids: torch.Tensor, steps: int = 32) -> torch.Tensor:
    """transformers' generate, one row at a time (see the module docstring)."""
    rows = []
    with torch.no_grad():
        for row in ids:
            rows.append(reference.generate(row[None], attention_mask=torch.ones_like(row[None]),
                                           do_sample=False, max_new_tokens=steps,
                                           eos_token_id=None, pad_token_id=0))
    return torch.cat(rows)


@pytest.mark.parametrize("case", ["odd_hidden_rescale_2", "attention_24_rescale_1"])
def test_greedy_generate_matches_transformers(tmp_path: Path, case: str) -> None:
    overrides = dict(CASES[case])
    if "attention_hidden_size" in overrides:
        # transformers' cache holds the WKV state at hidden_size; it cannot decode with a
        # narrower attention, so decoding is compared at attention = hidden.
        overrides.pop("attention_hidden_size")
    reference, native = build(tmp_path, rwkv_config(**overrides), seed=7)
    ids = token_ids(2, 7, seed=8)
    expected = greedy_reference(reference, ids)
    assert expected.shape == (2, 7 + 32)
    # A run that settles on one repeated token would match with a broken cache too.
    assert all(len(set(row[7:].tolist())) >= 3 for row in expected), expected
    actual = torch.from_dlpack(native.generate(ids, max_new_tokens=32))
    assert actual.tolist() == expected.tolist()


def test_cached_decoding_equals_full_forward(tmp_path: Path) -> None:
    # Every token greedy decoding chose through the cache is the argmax of one full forward over
    # the finished sequence, and those logits agree with transformers' full forward. Attention
    # narrower than hidden: the native cache handles it.
    reference, native = build(tmp_path, rwkv_config(**CASES["attention_24_rescale_1"]), seed=9)
    ids = token_ids(2, 6, seed=10)
    tokens = torch.from_dlpack(native.generate(ids, max_new_tokens=20))
    full = torch.from_dlpack(native(tokens).logits)
    assert torch.equal(full[:, 5:-1].argmax(-1), tokens[:, 6:])
    with torch.no_grad():  # no state: transformers' would be hidden_size wide (module docstring)
        theirs = reference(tokens, use_cache=False).logits
    assert relative_l2(full, theirs) < TOLERANCE


def test_padding_is_skipped(tmp_path: Path) -> None:
    # transformers' RWKV ignores attention_mask; hfport skips padded positions, so a padded row
    # gives at its tokens what the row alone gives, and a left-padded batch generates what each
    # row generates alone.
    _, native = build(tmp_path, rwkv_config(), seed=11)
    ids = token_ids(2, 9, seed=12)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    batch = torch.from_dlpack(native(ids, attention_mask=mask).logits)
    alone = torch.from_dlpack(native(ids[1:, 4:]).logits)
    assert relative_l2(batch[1, 4:], alone[0]) < 1e-6
    assert relative_l2(batch[0], torch.from_dlpack(native(ids[:1]).logits)[0]) < 1e-6
    unmasked = torch.from_dlpack(native(ids).logits)
    assert relative_l2(unmasked[1, 4:], alone[0]) > 1e-3  # the padding matters without the mask
    assert torch.equal(torch.from_dlpack(native(ids, attention_mask=torch.ones_like(ids)).logits),
                       unmasked)
    tokens = torch.from_dlpack(native.generate(ids, mask, max_new_tokens=12))
    row_alone = torch.from_dlpack(native.generate(ids[1:, 4:], max_new_tokens=12))
    assert tokens[1, 9:].tolist() == row_alone[0, 5:].tolist()


def test_errors_name_the_problem(tmp_path: Path) -> None:
    reference, native = build(tmp_path, rwkv_config(), seed=13)
    with pytest.raises(ArgumentError, match=r"input_ids\[0, 1\] = 80 is outside the vocabulary"):
        native(torch.tensor([[1, VOCAB]]))
    config = reference.config.to_dict()
    config["rescale_every"] = 1.5
    folder = tmp_path / "model"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="'rescale_every' must be an integer, got 1.5"):
        hfport.models.from_pretrained(folder)
