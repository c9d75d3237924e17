"""The native Mamba-2 model against transformers' Mamba2ForCausalLM and Mamba2Model.

Each model is a tiny transformers model built from a fixed seed with every parameter redrawn away
from its initial value (model_testing.redraw), saved with save_pretrained and loaded strictly by
hfport. transformers runs in float32 on its torch path (torch_forward: mamba2_chunk_scan and
mamba2_selective_state_update, the only path a CPU has). Logits and every hidden state must agree
to a relative L2 error below 1e-5 through hfport.parity.compare (which names each row), greedy
decoding through the native cache must give transformers' generate(do_sample=False) tokens, and
the native cache must agree with the native full forward (the logit-level check of feeding tokens
a few at a time is tests/cpp/test_model_recurrent.cpp).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hfport
import hfport.models
import pytest
import torch
import transformers
from hfport.errors import ArgumentError, ConfigError
from model_testing import redraw, relative_l2
from transformers import Mamba2Config, Mamba2ForCausalLM, Mamba2Model

transformers.utils.logging.set_verbosity_error()

VOCAB = 80
TOLERANCE = 1e-5


def token_ids(batch: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def mamba2_config(**overrides: Any) -> Mamba2Config:
    fields: dict[str, Any] = {
        "vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 3, "state_size": 8,
        "num_heads": 8, "head_dim": 8, "n_groups": 1, "expand": 2, "conv_kernel": 4,
        "chunk_size": 5, "layer_norm_epsilon": 1e-5, "bos_token_id": 1, "eos_token_id": None,
        "pad_token_id": 0,
    }
    fields.update(overrides)
    return Mamba2Config(**fields)


CASES = {
    # One group; chunk 5 does not divide the 13-token sequence; head tied to the embeddings.
    "one_group": {"tie_word_embeddings": True},
    # Two groups of four heads; in/out projection biases, no conv bias; own head.
    "two_groups_biases": {"n_groups": 2, "use_bias": True, "use_conv_bias": False},
    # head_dim 12 (not a power of two, nor a multiple of 16): hidden 36, expand 2 = 6 heads of 12;
    # three groups; chunk 4.
    "head_dim_12": {"hidden_size": 36, "num_heads": 6, "head_dim": 12, "n_groups": 3,
                    "chunk_size": 4},
    # A time_step_limit that binds at both ends (softplus(dt) spans about 6e-4 .. 0.15 here): the
    # prefill clamps; a one-token decode step does not, in transformers as in hfport.
    "time_step_limit": {"n_groups": 2, "time_step_limit": (0.002, 0.03)},
}


def build(tmp_path: Path, config: Mamba2Config, seed: int,
          model_class: Any = Mamba2ForCausalLM) -> tuple[Any, Any]:
    torch.manual_seed(seed)
    reference = model_class(config).eval()
    redraw(reference, seed)
    folder = tmp_path / "model"
    reference.save_pretrained(folder)
    return reference, hfport.models.from_pretrained(folder)


@pytest.mark.parametrize("case", sorted(CASES))
def test_logits_and_every_hidden_state(tmp_path: Path, case: str) -> None:
    config = mamba2_config(**CASES[case])
    reference, native = build(tmp_path, config, seed=1)
    assert native.family == "mamba2"
    mixer = reference.backbone.layers[0].mixer
    if case == "head_dim_12":
        assert (mixer.head_dim, mixer.n_groups, mixer.chunk_size) == (12, 3, 4)
    if case == "time_step_limit":
        assert tuple(mixer.time_step_limit) == (0.002, 0.03)
    report = hfport.parity.compare(native, reference, token_ids(2, 13, seed=2))
    # Mamba2Model's tuple: each block's output, then norm_f of the last; then the logits.
    assert [row.name for row in report.rows] == ["layers.0", "layers.1", "layers.2", "norm_f",
                                                 "logits"]
    assert report.ok, str(report)
    assert max(row.rel_l2 for row in report.rows) < TOLERANCE


def test_time_step_limit_is_applied(tmp_path: Path) -> None:
    # The same weights with the limit lifted give other logits: the limit case tests something.
    reference, native = build(tmp_path, mamba2_config(**CASES["time_step_limit"]), seed=1)
    ids = token_ids(2, 13, seed=2)
    limited = torch.from_dlpack(native(ids).logits)
    config = reference.config.to_dict()
    config["time_step_limit"] = [0.0, float("inf")]
    (tmp_path / "model" / "config.json").write_text(
        Mamba2Config(**{k: v for k, v in config.items()
                        if k not in ("transformers_version",)}).to_json_string())
    free = torch.from_dlpack(hfport.models.from_pretrained(tmp_path / "model")(ids).logits)
    assert relative_l2(free, limited) > 1e-3


def test_base_model_returns_last_hidden_state(tmp_path: Path) -> None:
    reference, native = build(tmp_path, mamba2_config(n_groups=2), seed=3, model_class=Mamba2Model)
    assert native.head == ""
    out = native.forward(token_ids(2, 9, seed=4))
    assert "logits" not in out
    report = hfport.parity.compare(native, reference, token_ids(2, 9, seed=4))
    assert "last_hidden_state" in [row.name for row in report.rows]
    assert report.ok, str(report)


def test_padded_batch(tmp_path: Path) -> None:
    # transformers zeroes padded positions before in_proj and after the conv; so does hfport.
    reference, native = build(tmp_path, mamba2_config(n_groups=2), seed=5)
    ids = token_ids(3, 12, seed=6)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[2, 9:] = 0
    report = hfport.parity.compare(native, reference, ids, mask)
    assert report.ok, str(report)
    plain = torch.from_dlpack(native(ids).logits)
    masked = torch.from_dlpack(native(ids, attention_mask=mask).logits)
    assert relative_l2(plain[0, 3:], masked[0, 3:]) > 1e-3


def greedy_reference(reference: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return reference.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=32,
                                  eos_token_id=None, pad_token_id=0)


@pytest.mark.parametrize("case", ["one_group", "head_dim_12", "time_step_limit"])
def test_greedy_generate_matches_transformers(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, mamba2_config(**CASES[case]), seed=7)
    ids = token_ids(2, 7, seed=8)
    expected = greedy_reference(reference, ids, torch.ones_like(ids))
    assert expected.shape == (2, 7 + 32)
    # A run that settles on one repeated token would match with a broken cache too.
    assert all(len(set(row[7:].tolist())) >= 4 for row in expected)
    actual = torch.from_dlpack(native.generate(ids, max_new_tokens=32))
    assert actual.tolist() == expected.tolist()


def test_greedy_generate_left_padded_matches_transformers(tmp_path: Path) -> None:
    # The prompt's mask on the first step only, as Mamba2ForCausalLM drops it after prefill.
    reference, native = build(tmp_path, mamba2_config(n_groups=2), seed=9)
    ids = token_ids(2, 8, seed=10)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    expected = greedy_reference(reference, ids, mask)
    actual = torch.from_dlpack(native.generate(ids, mask, max_new_tokens=32))
    assert actual.tolist() == expected.tolist()


def test_cached_decoding_equals_full_forward(tmp_path: Path) -> None:
    # Every token greedy decoding chose through the cache is the argmax of one full forward over
    # the finished sequence, and the logits there agree with transformers' full forward.
    reference, native = build(tmp_path, mamba2_config(**CASES["head_dim_12"]), seed=11)
    ids = token_ids(2, 6, seed=12)
    tokens = torch.from_dlpack(native.generate(ids, max_new_tokens=20))
    full = torch.from_dlpack(native(tokens).logits)
    assert torch.equal(full[:, 5:-1].argmax(-1), tokens[:, 6:])
    with torch.no_grad():
        theirs = reference(tokens).logits
    assert relative_l2(full, theirs) < TOLERANCE


def test_errors_name_the_problem(tmp_path: Path) -> None:
    _, native = build(tmp_path / "ok", mamba2_config(), seed=13)
    with pytest.raises(ArgumentError, match="attention_mask holds 2"):
        native(token_ids(1, 3, seed=14), attention_mask=torch.tensor([[1, 2, 1]]))
    reference, _ = build(tmp_path / "act", mamba2_config(), seed=15)
    config = reference.config.to_dict()
    config["hidden_act"] = "gelu"
    folder = tmp_path / "act" / "model"
    (folder / "config.json").write_text(Mamba2Config(**{
        k: v for k, v in config.items() if k != "transformers_version"}).to_json_string())
    with pytest.raises(ConfigError, match="hidden_act 'gelu' is not supported"):
        hfport.models.from_pretrained(folder)
