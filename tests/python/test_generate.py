"""hfport's generate against transformers' generate: EOS, padding, left-padded batches, sampling.

Every model is a tiny transformers model with its parameters redrawn (model_testing.redraw), saved
with save_pretrained and loaded strictly by hfport; the reference is the same model loaded back
from that folder with local_files_only=True, so both read the same generation_config.json.
Greedy runs must give transformers' tokens exactly. The eos id of each test is found in a first
run without one: a token that some row produces mid-way and another row never produces, so rows
really stop, finished rows really get pad_token_id and the others go on. Sampling is hfport's own
generator, so it is tested by its properties: top_k=1 and a tiny temperature give the greedy
tokens, one seed gives one output, the probabilities it draws from are transformers' warpers
applied to the same logits, and many draws land with those probabilities.

Positions: a left-padded row of the LLaMA family only has all its positions shifted by the same
amount when they are wrong, which RoPE's relative form cancels (padded keys are masked); GPT-2's
learned positions do not cancel, so the GPT-2 cases are the ones that catch wrong positions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import hfport.models
import pytest
import torch
import transformers
from hfport import _hfport
from hfport.errors import ArgumentError, ConfigError
from model_testing import redraw
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MambaConfig,
    MambaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
)
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

transformers.utils.logging.set_verbosity_error()

VOCAB = 64
PAD = 0
NEW_TOKENS = 16


def family_config(family: str) -> Any:
    special = {"bos_token_id": 1, "eos_token_id": None, "pad_token_id": PAD}
    if family in ("llama", "mistral"):
        config_class = LlamaConfig if family == "llama" else MistralConfig
        extra = {"sliding_window": 5} if family == "mistral" else {}
        config = config_class(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            rms_norm_eps=1e-5, tie_word_embeddings=False, **special, **extra)
    elif family == "gpt2":
        config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                            **special)
    else:
        config = MambaConfig(vocab_size=VOCAB, hidden_size=32, state_size=8, num_hidden_layers=3,
                             conv_kernel=4, expand=2, **special)
    config._attn_implementation = "eager"
    return config


MODEL_CLASSES = {"llama": LlamaForCausalLM, "mistral": MistralForCausalLM,
                 "gpt2": GPT2LMHeadModel, "mamba": MambaForCausalLM}
FAMILIES = sorted(MODEL_CLASSES)


def build(tmp_path: Path, family: str, seed: int) -> tuple[Any, hfport.models.Model]:
    """The transformers reference, loaded back from the saved folder, and the native model."""
    torch.manual_seed(seed)
    model = MODEL_CLASSES[family](family_config(family)).eval()
    redraw(model, seed)
    folder = tmp_path / family
    model.save_pretrained(folder)
    return load_pair(folder, family)


def load_pair(folder: Path, family: str) -> tuple[Any, hfport.models.Model]:
    reference = MODEL_CLASSES[family].from_pretrained(folder, local_files_only=True).eval()
    if family != "mamba":
        reference.config._attn_implementation = "eager"
    return reference, hfport.models.from_pretrained(folder)


def left_padded(lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of `lengths` tokens (ids 2.., never PAD), left padded with PAD, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, width - length:] = torch.randint(2, VOCAB, (length,), generator=generator)
        mask[row, width - length:] = 1
    return ids, mask


def reference_generate(reference: Any, ids: torch.Tensor, mask: torch.Tensor,
                       **kwargs: Any) -> torch.Tensor:
    with torch.no_grad():
        return reference.generate(ids, attention_mask=mask, do_sample=False, **kwargs)


def native_generate(native: hfport.models.Model, ids: torch.Tensor, mask: torch.Tensor | None,
                    **kwargs: Any) -> torch.Tensor:
    return torch.from_dlpack(native.generate(ids, mask, **kwargs))


def stopping_token(new_tokens: torch.Tensor) -> tuple[int, int, int]:
    """(token, row, step): a token that `row` first produces at `step` (neither first nor last)
    while another row never produces it, so an eos id of that token stops one row mid-way and
    leaves another running to the end."""
    steps = new_tokens.shape[1]
    for step in range(1, steps - 2):
        for row in range(new_tokens.shape[0]):
            token = new_tokens[row, step].item()
            if token in new_tokens[row, :step].tolist():
                continue
            if any(token not in other.tolist() for other in new_tokens):
                return token, row, step
    raise AssertionError(f"no token stops one row and not another in {new_tokens.tolist()}")


# ---------------------------------------------------------------------------------------------
# Greedy parity

@pytest.mark.parametrize("family", FAMILIES)
def test_left_padded_batch_matches_transformers(tmp_path: Path, family: str) -> None:
    reference, native = build(tmp_path, family, seed=9)
    ids, mask = left_padded([7, 4, 2], seed=10)
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)
    assert expected.shape == (3, 7 + NEW_TOKENS)
    # A run that settles on one repeated token would match with broken positions too.
    assert all(len(set(row[7:].tolist())) >= 3 for row in expected)
    actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS)
    assert actual.tolist() == expected.tolist()
    # Padding changes nothing for a row: each prompt alone, unpadded, gives the same tokens.
    for row, length in enumerate([7, 4, 2]):
        alone = native_generate(native, ids[row:row + 1, 7 - length:], None,
                                max_new_tokens=NEW_TOKENS)
        assert alone[0, length:].tolist() == expected[row, 7:].tolist(), f"row {row}"


@pytest.mark.parametrize("family", FAMILIES)
def test_eos_stops_rows_and_pads_them_like_transformers(tmp_path: Path, family: str) -> None:
    reference, native = build(tmp_path, family, seed=5)
    ids, mask = left_padded([6, 3, 5], seed=6)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 6:]
    eos, row, step = stopping_token(free_run)
    pad = 1 if eos != 1 else 2
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS,
                                  eos_token_id=eos, pad_token_id=pad)
    actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, eos_token_id=eos,
                             pad_token_id=pad)
    assert actual.tolist() == expected.tolist()
    # The row stopped where the free run first made the token, and was padded from there on;
    # a row that never makes it ran to the end.
    assert actual.shape == (3, 6 + NEW_TOKENS)
    assert actual[row, 6 + step].item() == eos
    assert set(actual[row, 6 + step + 1:].tolist()) == {pad}
    assert any(eos not in new.tolist() for new in actual[:, 6:])


@pytest.mark.parametrize("family", FAMILIES)
def test_output_ends_when_every_row_has_finished(tmp_path: Path, family: str) -> None:
    reference, native = build(tmp_path, family, seed=7)
    ids, mask = left_padded([5, 2], seed=8)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 5:]
    # One token from the middle of each row: with all of them as eos ids, every row stops by then.
    eos = sorted({free_run[0, 6].item(), free_run[1, 4].item()})
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS,
                                  eos_token_id=eos, pad_token_id=PAD)
    assert expected.shape[1] <= 5 + 7
    actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, eos_token_id=eos,
                             pad_token_id=PAD)
    assert actual.tolist() == expected.tolist()


@pytest.mark.parametrize("family", ["llama", "gpt2", "mamba"])
def test_min_new_tokens_holds_eos_back_like_transformers(tmp_path: Path, family: str) -> None:
    reference, native = build(tmp_path, family, seed=9)
    ids, mask = left_padded([4, 6], seed=10)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 6:]
    eos, row, step = stopping_token(free_run)
    minimum = step + 3
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS,
                                  eos_token_id=eos, pad_token_id=PAD, min_new_tokens=minimum)
    actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, eos_token_id=eos,
                             pad_token_id=PAD, min_new_tokens=minimum)
    assert actual.tolist() == expected.tolist()
    # The eos the row made at `step` was held back: nothing before `minimum` is eos.
    assert eos not in actual[row, 6:6 + minimum].tolist()


def test_eos_and_pad_default_to_generation_config_json(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "llama", seed=11)
    ids, mask = left_padded([5, 3], seed=12)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 5:]
    eos, row, step = stopping_token(free_run)
    reference.generation_config.eos_token_id = eos
    reference.generation_config.pad_token_id = 3
    reference.save_pretrained(tmp_path / "with_eos")
    reference, native = load_pair(tmp_path / "with_eos", "llama")
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)
    actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS)
    assert actual.tolist() == expected.tolist()
    assert actual[row, 5 + step].item() == eos and set(actual[row, 5 + step + 1:].tolist()) == {3}
    # Opened by its file, the checkpoint's folder still gives generation_config.json.
    by_file = hfport.models.from_pretrained(tmp_path / "with_eos" / "model.safetensors")
    assert native_generate(by_file, ids, mask, max_new_tokens=NEW_TOKENS).tolist() == \
        actual.tolist()
    # [] turns the checkpoint's eos off: the free run again.
    unstopped = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, eos_token_id=[])
    assert unstopped[:, 5:].tolist() == free_run.tolist()


def test_eos_and_pad_come_from_config_json_without_generation_config(tmp_path: Path) -> None:
    reference, _ = build(tmp_path, "gpt2", seed=31)
    ids, mask = left_padded([4, 2], seed=14)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 4:]
    eos, row, step = stopping_token(free_run)
    reference.config.eos_token_id = eos
    reference.config.pad_token_id = 2
    folder = tmp_path / "config_only"
    reference.save_pretrained(folder)
    (folder / "generation_config.json").unlink()
    reference, native = load_pair(folder, "gpt2")
    assert reference.generation_config.eos_token_id == eos
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)
    actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS)
    assert actual.tolist() == expected.tolist()
    assert set(actual[row, 4 + step + 1:].tolist()) == {2}


def test_eos_pads_when_no_pad_token_is_set(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "mamba", seed=15)
    ids, mask = left_padded([3, 5], seed=16)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 5:]
    eos, row, step = stopping_token(free_run)
    reference.generation_config.pad_token_id = None
    expected = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS,
                                  eos_token_id=eos)
    # generation_config.json without pad_token_id wins over config.json's pad_token_id 0.
    generation_config = tmp_path / "mamba" / "generation_config.json"
    fields = json.loads(generation_config.read_text())
    del fields["pad_token_id"]
    generation_config.write_text(json.dumps(fields))
    native = hfport.models.from_pretrained(tmp_path / "mamba")
    with pytest.warns(UserWarning, match=f"padded with the eos id {eos}, as transformers does"):
        actual = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, eos_token_id=eos)
    assert actual.tolist() == expected.tolist()
    assert set(actual[row, 5 + step:].tolist()) == {eos}


def test_old_two_argument_call_is_greedy_without_a_mask(tmp_path: Path) -> None:
    _, native = build(tmp_path, "llama", seed=17)
    ids, _ = left_padded([6, 6], seed=18)
    plain = torch.from_dlpack(native.generate(ids, max_new_tokens=5))
    ones = native_generate(native, ids, torch.ones_like(ids), max_new_tokens=5)
    assert plain.tolist() == ones.tolist()


# ---------------------------------------------------------------------------------------------
# Sampling

def test_sampling_with_top_k_1_or_a_tiny_temperature_is_greedy(tmp_path: Path) -> None:
    _, native = build(tmp_path, "llama", seed=19)
    ids, mask = left_padded([6, 2, 4], seed=20)
    greedy = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS)
    for seed in range(3):
        top_1 = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, do_sample=True,
                                top_k=1, temperature=5.0, seed=seed)
        assert top_1.tolist() == greedy.tolist()
        cold = native_generate(native, ids, mask, max_new_tokens=NEW_TOKENS, do_sample=True,
                               top_k=0, temperature=1e-4, seed=seed)
        assert cold.tolist() == greedy.tolist()


def test_one_seed_gives_one_output(tmp_path: Path) -> None:
    _, native = build(tmp_path, "gpt2", seed=21)
    ids, mask = left_padded([5, 3], seed=22)
    settings = dict(max_new_tokens=NEW_TOKENS, do_sample=True, temperature=1.5, top_k=0)
    first = native_generate(native, ids, mask, seed=7, **settings)
    assert native_generate(native, ids, mask, seed=7, **settings).tolist() == first.tolist()
    # Seeds are taken modulo 2**64.
    assert (native_generate(native, ids, mask, seed=-1, **settings).tolist()
            == native_generate(native, ids, mask, seed=2**64 - 1, **settings).tolist())
    others = [native_generate(native, ids, mask, seed=s, **settings).tolist() for s in range(3)]
    assert any(other != first.tolist() for other in others)


def transformers_warped_probabilities(logits: torch.Tensor, temperature: float, top_k: int,
                                      top_p: float) -> torch.Tensor:
    """softmax after the warpers _get_logits_processor adds for these settings, in its order."""
    scores = logits.clone()
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k != 0:
        scores = TopKLogitsWarper(top_k=top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p=top_p)(None, scores)
    return scores.double().softmax(-1)


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [
    (1.0, 50, 1.0), (0.7, 5, 1.0), (1.0, 0, 0.9), (1.3, 12, 0.6), (0.5, 0, 0.3), (2.0, 3, 0.95),
    (1.0, 1, 1.0), (1.0, 0, 1e-3),
])
def test_filtered_probabilities_are_transformers_warpers(temperature: float, top_k: int,
                                                         top_p: float) -> None:
    generator = torch.Generator().manual_seed(top_k * 100 + int(top_p * 10))
    # Rows from flat to peaked, over a vocabulary that is not a power of two.
    logits = torch.randn(6, 77, generator=generator) * torch.tensor([[0.1], [1], [2], [4], [8],
                                                                     [16]])
    expected = transformers_warped_probabilities(logits, temperature, top_k, top_p)
    actual = torch.from_dlpack(_hfport._sampling_probabilities(logits, temperature, top_k, top_p))
    assert torch.equal(actual > 0, expected > 0)
    assert torch.allclose(actual, expected, atol=1e-6)
    if top_p < 1.0:
        # The kept set is the smallest whose mass reaches top_p, in the distribution that
        # temperature and top-k leave.
        before_top_p = transformers_warped_probabilities(logits, temperature, top_k, 1.0)
        mass = before_top_p.sort(-1, descending=True).values.cumsum(-1)
        support = (actual > 0).sum(-1)
        for row in range(6):
            count = support[row].item()
            assert mass[row, count - 1] >= top_p - 1e-6
            assert count == 1 or mass[row, count - 2] < top_p + 1e-6


def test_draws_land_with_the_warped_probabilities(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "llama", seed=23)
    rows = 3000
    prompt = torch.tensor([[5, 17, 9, 30]])
    settings = dict(temperature=2.5, top_k=12, top_p=0.9)
    with torch.no_grad():
        logits = reference(prompt).logits[:, -1, :]
    expected = transformers_warped_probabilities(logits, **settings)[0]
    assert (expected > 0).sum() >= 4  # a distribution worth sampling
    drawn = native_generate(native, prompt.repeat(rows, 1), None, max_new_tokens=1,
                            do_sample=True, seed=123, **settings)[:, -1]
    counts = torch.bincount(drawn, minlength=VOCAB).double()
    assert set(drawn.tolist()) <= set(torch.nonzero(expected).flatten().tolist())
    # Each frequency within 4.5 standard deviations of its probability.
    spread = (expected * (1 - expected) / rows).sqrt()
    assert torch.all((counts / rows - expected).abs() <= 4.5 * spread + 1e-12)


# ---------------------------------------------------------------------------------------------
# Errors

@pytest.fixture(scope="module")
def gpt2_native(tmp_path_factory: pytest.TempPathFactory) -> hfport.models.Model:
    return build(tmp_path_factory.mktemp("errors"), "gpt2", seed=24)[1]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"temperature": 0.0}, r"temperature must be a finite number > 0, got 0 \(for greedy"),
    ({"temperature": -1.0}, "temperature must be a finite number > 0, got -1"),
    ({"temperature": math.nan}, "temperature must be a finite number > 0, got nan"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\] \(1 turns top-p filtering off\), got 0"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\] .*, got 1.5"),
    ({"top_k": -1}, r"top_k must be >= 0 \(0 turns top-k filtering off\), got -1"),
    ({"min_new_tokens": -2}, "min_new_tokens must be >= 0, got -2"),
    ({"max_new_tokens": -1}, r"max_new_tokens must be in \[0, 2\^31 - prompt length\], got -1"),
    ({"eos_token_id": -3}, "eos_token_id must hold token ids >= 0, got -3"),
    ({"eos_token_id": True}, "eos_token_id must be an int, a list of ints or None, got a bool"),
    ({"eos_token_id": "2"}, "eos_token_id must be an int, a list of ints or None, got str"),
    ({"pad_token_id": -1}, "pad_token_id must be a token id >= 0, got -1"),
    ({"seed": 1.5}, "seed must be an int or None, got float"),
])
def test_bad_arguments_are_named(gpt2_native: hfport.models.Model, arguments: dict[str, Any],
                                 message: str) -> None:
    native = gpt2_native
    settings = {"max_new_tokens": 3, **arguments}
    with pytest.raises(ArgumentError, match=message):
        native.generate(torch.tensor([[3, 4, 5]]), **settings)


def test_right_padding_is_refused(tmp_path: Path) -> None:
    _, native = build(tmp_path, "llama", seed=25)
    ids = torch.tensor([[3, 4, 5], [6, 7, PAD]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    with pytest.raises(ArgumentError, match=r"attention_mask row 1 ends in padding .* pad prompts "
                       r"on the left \(tokenizers: padding_side='left'\)"):
        native.generate(ids, mask, max_new_tokens=3)
    with pytest.raises(ArgumentError, match=r"attention_mask must have input_ids' shape \[2, 3\], "
                       r"got \[2, 2\]"):
        native.generate(ids, mask[:, :2], max_new_tokens=3)


def test_pad_outside_the_vocabulary_is_refused_when_a_row_needs_it(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "llama", seed=26)
    ids, mask = left_padded([4, 4], seed=27)
    free_run = reference_generate(reference, ids, mask, max_new_tokens=NEW_TOKENS)[:, 4:]
    eos, _, _ = stopping_token(free_run)
    with pytest.raises(ArgumentError, match=rf"pad_token_id {VOCAB} is outside the vocabulary "
                       rf"\[0, {VOCAB}\), so a finished row cannot be padded with it"):
        native.generate(ids, mask, max_new_tokens=NEW_TOKENS, eos_token_id=eos, pad_token_id=VOCAB)


def test_a_bad_checkpoint_eos_names_the_file(tmp_path: Path) -> None:
    _, native = build(tmp_path, "llama", seed=28)
    folder = tmp_path / "llama"
    (folder / "generation_config.json").write_text('{"eos_token_id": [2, "x"]}')
    native = hfport.models.from_pretrained(folder)
    with pytest.raises(ConfigError, match=r"generation_config.json of '.*llama': eos_token_id must "
                       r"be a token id \(an integer >= 0\) or a list of them, got \"x\"; pass "
                       r"eos_token_id to generate to override it"):
        native.generate(torch.tensor([[3, 4]]), max_new_tokens=2)
    unstopped = native_generate(native, torch.tensor([[3, 4]]), None, max_new_tokens=2,
                                eos_token_id=[])
    assert unstopped.shape == (1, 4)
    (folder / "generation_config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"generation_config.json of '.*llama': a generation "
                       r"config must be a JSON object, got array"):
        hfport.models.from_pretrained(folder)
