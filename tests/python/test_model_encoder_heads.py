"""Native BERT, RoBERTa and ALBERT with their task heads against transformers.

Tiny random models (fixed seeds, every parameter redrawn away from its initial value, eager
attention, float32) of each family x (base, ForMaskedLM, ForSequenceClassification,
ForTokenClassification) are written with save_pretrained, loaded strict with the head config.json's
`architectures` selects, and compared layer by layer with hfport.parity.compare on a padded batch
whose padded positions hold the pad token: every hidden state, then the logits (a base model: the
last hidden state and the pooler) within rel-L2 1e-5. RoBERTa's position ids (padding tokens at
padding_idx, the others counted after it) are checked where they differ from BERT's: a
left-padded row must give what the same row gives unpadded. ALBERT's shared layers are checked with
two groups of two blocks over three layers.

The real ALBERT masked LM that rxnmapper 0.4.3 ships as pytorch_model.bin (saved from a GPU, its
decoder tied) is converted with `hfport convert-pickle`, loaded strict with its head and compared
with transformers' AlbertForMaskedLM on tokenized reactions (skipped without the package).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hfport
import hfport.models
import pytest
import torch
import transformers
from hfport.demo import rxnmapper_albert_dir
from hfport.errors import ArgumentError, ConfigError, LoadError
from hfport.parity import compare, compare_checkpoint, reference_model
from model_testing import redraw, relative_l2

transformers.utils.logging.set_verbosity_error()

VOCAB = 60
LABELS = 3
TOLERANCE = 1e-5

# family -> (transformers class prefix, config fields beyond the shared ones)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "bert": ("Bert", {"type_vocab_size": 2}),
    # RoBERTa's positions run from pad_token_id + 1, so its table has pad_token_id + 1 extra rows.
    "roberta": ("Roberta", {"type_vocab_size": 1, "max_position_embeddings": 34}),
    "albert": ("Albert", {"embedding_size": 24}),
}
# head -> transformers class suffix
HEADS = {
    "": "Model",
    "masked_lm": "ForMaskedLM",
    "sequence_classification": "ForSequenceClassification",
    "token_classification": "ForTokenClassification",
}
# the native names each head adds (docs/names.md), by family where they differ
HEAD_NAMES = {
    "": [],
    "masked_lm": ["mlm.dense.weight", "mlm.dense.bias", "mlm.norm.weight", "mlm.norm.bias",
                  "mlm.decoder.weight", "mlm.decoder.bias"],
    "sequence_classification": ["cls.out.weight", "cls.out.bias"],
    "token_classification": ["cls.out.weight", "cls.out.bias"],
}


def save_tiny(folder: Path, family: str, head: str, seed: int,
              **overrides: Any) -> tuple[torch.nn.Module, Path]:
    prefix, fields = FAMILIES[family]
    config_fields: dict[str, Any] = {
        "vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 40, "max_position_embeddings": 32, "num_labels": LABELS,
        **fields, **overrides,
    }
    config = getattr(transformers, prefix + "Config")(**config_fields)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    reference = getattr(transformers, prefix + HEADS[head])(config).eval()
    redraw(reference, seed)
    path = folder / f"{family}_{head or 'base'}"
    reference.save_pretrained(path)
    return reference, path


def padded_batch(pad: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of 12 tokens: whole, right-padded, left-padded; padding holds the pad token."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, :4] = 0
    return ids.masked_fill(mask == 0, pad), mask


CASES = [(family, head) for family in FAMILIES for head in HEADS]


@pytest.mark.parametrize(("family", "head"), CASES,
                         ids=[f"{f}-{h or 'base'}" for f, h in CASES])
def test_head_matches_transformers_layer_by_layer(tmp_path: Path, family: str, head: str) -> None:
    reference, path = save_tiny(tmp_path, family, head, seed=len(family) + len(head))
    state, report = hfport.load(path)  # strict
    assert report.family == family and report.head == head
    for name in HEAD_NAMES[head]:
        assert name in state, name
    if family == "roberta" and head == "sequence_classification":
        assert tuple(state["cls.dense.weight"].shape) == (32, 32)
    if head in ("sequence_classification", "token_classification"):
        assert tuple(state["cls.out.weight"].shape) == (LABELS, 32)

    model = hfport.models.from_pretrained(path)
    assert model.family == family
    ids, mask = padded_batch(reference.config.pad_token_id, seed=5)
    parity = compare(model, reference, ids, attention_mask=mask)
    assert parity.ok, str(parity)
    names = [row.name for row in parity.rows]
    if head:
        assert names == ["embeddings", "layers.0", "layers.1", "logits"]
        expected_shape = {"masked_lm": (3, 12, VOCAB), "sequence_classification": (3, LABELS),
                          "token_classification": (3, 12, LABELS)}[head]
        assert parity["logits"].shape == expected_shape
        assert "pooler_output" not in model.forward(ids, mask)
    else:
        assert names == ["embeddings", "layers.0", "layers.1", "last_hidden_state", "pooler_output"]
        assert "logits" not in model.forward(ids, mask)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_masked_lm_tied_and_untied_decoder(tmp_path: Path, family: str) -> None:
    """Tied (the default of all three): the decoder is the word embedding table and its bias the
    head's `bias`. Untied: both come from the decoder's own tensors, which transformers saves."""
    for tie in (True, False):
        reference, path = save_tiny(tmp_path / str(tie), family, "masked_lm", seed=11,
                                    tie_word_embeddings=tie)
        state, report = hfport.load(path)
        words = torch.from_dlpack(state["tok_embd.weight"])
        decoder = torch.from_dlpack(state["mlm.decoder.weight"])
        assert ("mlm.decoder.weight" in report.tied) == tie
        assert (decoder.data_ptr() == words.data_ptr()) == tie
        assert torch.equal(decoder, words) == tie
        head = reference.get_output_embeddings()
        assert torch.equal(torch.from_dlpack(state["mlm.decoder.bias"]), head.bias.detach())
        ids, mask = padded_batch(reference.config.pad_token_id, seed=12)
        parity = compare(hfport.models.from_pretrained(path), reference, ids, attention_mask=mask)
        assert parity.ok, str(parity)


def test_roberta_positions_start_after_padding_idx(tmp_path: Path) -> None:
    reference, path = save_tiny(tmp_path, "roberta", "masked_lm", seed=21, pad_token_id=1)
    model = hfport.models.from_pretrained(path)
    generator = torch.Generator().manual_seed(22)
    row = torch.randint(3, VOCAB, (1, 9), generator=generator)
    left_padded = torch.cat([torch.ones(1, 3, dtype=torch.long), row], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 9, dtype=torch.long)], 1)
    alone = torch.from_dlpack(model(row).logits)
    padded = torch.from_dlpack(model(left_padded, attention_mask=mask).logits)
    # The real tokens keep positions 2..10 behind left padding: the same logits as unpadded.
    assert relative_l2(padded[0, 3:], alone[0]) < TOLERANCE
    # A pad token inside a row takes position padding_idx and shifts nothing after it, as in
    # transformers (the attention mask does not enter the rule, the ids do).
    inside = row.clone()
    inside[0, 4] = 1
    parity = compare(model, reference, torch.cat([inside, row]))
    assert parity.ok, str(parity)
    # The 32nd real token's position is padding_idx + 32 = 33, the last of 34 rows.
    assert torch.from_dlpack(model(torch.full((1, 32), 7)).logits).shape == (1, 32, VOCAB)
    with pytest.raises(ArgumentError, match=r"position id 34 .* outside the 34 learned positions"):
        model(torch.full((1, 33), 7))


def test_albert_shared_groups_and_inner_layers(tmp_path: Path) -> None:
    """Three layers over two groups of two blocks: layers 0, 1 run group 0, layer 2 group 1
    (int(i / 1.5)), and transformers records every block's output: 1 + 3 * 2 hidden states."""
    reference, path = save_tiny(tmp_path, "albert", "masked_lm", seed=31, num_hidden_layers=3,
                                num_hidden_groups=2, inner_group_num=2)
    state, _ = hfport.load(path)
    blocks = {".".join(name.split(".")[:4]) for name in state if name.startswith("grp.")}
    assert sorted(blocks) == ["grp.0.blk.0", "grp.0.blk.1", "grp.1.blk.0", "grp.1.blk.1"]
    ids, mask = padded_batch(reference.config.pad_token_id, seed=32)
    parity = compare(hfport.models.from_pretrained(path), reference, ids, attention_mask=mask)
    assert parity.ok, str(parity)
    assert [row.name for row in parity.rows] == [
        "embeddings", *(f"layers.{i}" for i in range(6)), "logits"]


def test_albert_groups_the_checkpoint_lacks_are_named(tmp_path: Path) -> None:
    _, path = save_tiny(tmp_path, "albert", "", seed=41)
    config = json.loads((path / "config.json").read_text())
    config["num_hidden_groups"] = 2
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(LoadError) as caught:
        hfport.load(path)
    message = str(caught.value)
    assert "grp.1.blk.0.attn_qkv.weight" in message
    assert "encoder.albert_layer_groups.1.albert_layers.0.attention.query.weight" in message


def test_albert_config_the_spec_cannot_express_is_refused(tmp_path: Path) -> None:
    """transformers builds an ALBERT whose hidden_size is not a multiple of the heads (it projects
    to heads * (hidden_size // heads)); the spec says it covers only the other kind."""
    _, path = save_tiny(tmp_path, "albert", "", seed=42, hidden_size=30, num_attention_heads=4)
    with pytest.raises(ConfigError, match=r"hidden_size % num_attention_heads == 0.*"
                                          r"hidden_size = 30, num_attention_heads = 4"):
        hfport.load(path)


def test_sequence_classifier_with_the_default_two_labels(tmp_path: Path) -> None:
    """transformers writes neither num_labels nor id2label for its default of two labels."""
    reference, path = save_tiny(tmp_path, "bert", "sequence_classification", seed=43,
                                num_labels=2)
    config = json.loads((path / "config.json").read_text())
    assert "num_labels" not in config and "id2label" not in config
    model = hfport.models.from_pretrained(path)
    assert model.head == "sequence_classification"
    ids, mask = padded_batch(reference.config.pad_token_id, seed=44)
    parity = compare(model, reference, ids, attention_mask=mask)
    assert parity.ok and parity["logits"].shape == (3, 2), str(parity)


def test_albert_pretraining_checkpoint_runs_its_base_model(tmp_path: Path) -> None:
    """AlbertForPreTraining (masked LM + sentence order) is no head of the spec: its base model
    loads strict and runs, and its head tensors are reported, not loaded."""
    _, path = save_tiny(tmp_path, "albert", "", seed=45)
    config = transformers.AlbertConfig.from_pretrained(path)
    pretraining = transformers.AlbertForPreTraining(config).eval()
    redraw(pretraining, 45)
    pretraining.save_pretrained(tmp_path / "pretraining")
    model = hfport.models.from_pretrained(tmp_path / "pretraining")
    assert model.head == ""
    head_tensors = model.report.head_tensors
    assert "sop_classifier.classifier.weight" in head_tensors
    assert "predictions.dense.weight" in head_tensors
    ids, mask = padded_batch(config.pad_token_id, seed=46)
    with torch.no_grad():
        expected = pretraining.albert(input_ids=ids, attention_mask=mask)
    out = model.forward(ids, mask)
    keep = mask.bool()
    last = torch.from_dlpack(out["last_hidden_state"])
    assert relative_l2(last[keep], expected.last_hidden_state[keep]) < TOLERANCE
    assert relative_l2(torch.from_dlpack(out.pooler_output), expected.pooler_output) < TOLERANCE


def test_causal_bert_is_refused_not_run_both_ways(tmp_path: Path) -> None:
    """BertLMHeadModel with is_decoder attends causally; the native encoder would attend both ways
    and give other numbers, so it refuses the config."""
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=4, intermediate_size=40, is_decoder=True)
    transformers.BertLMHeadModel(config).save_pretrained(tmp_path / "causal")
    with pytest.raises(ConfigError, match="native bert model: config.json sets is_decoder"):
        hfport.models.from_pretrained(tmp_path / "causal")


# --- the real ALBERT masked LM of rxnmapper 0.4.3 ----------------------------------------------

REACTIONS = [
    "CC(=O)O.OCC>>CC(=O)OCC",
    "Brc1ccccc1.OB(O)c1ccccc1>>c1ccc(-c2ccccc2)cc1",
    "CN.O=C(Cl)c1ccccc1>>CNC(=O)c1ccccc1",
    "C=CC(=O)OC.[H][H]>>CCC(=O)OC",
]
# Bracket atoms, two-letter halogens, the reaction arrow and two-digit ring closures are one token
# each; everything else one character, as rxnmapper's SMILES tokenizer splits these reactions.
SMILES_TOKEN = re.compile(r"\[[^\]]+\]|Br|Cl|>>|%\d\d|.")


def rxnmapper_model() -> Path:
    model = rxnmapper_albert_dir()
    if model is None:
        pytest.skip("the real ALBERT masked LM comes from the PyPI package rxnmapper==0.4.3; "
                    "install it with `pip install --no-deps rxnmapper==0.4.3` (make deps does)")
    return model


def tokenized_reactions(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[CLS] reaction [SEP] padded with [PAD]; every fourth atom token replaced by [MASK]. Returns
    the ids, the attention mask and the original ids at the masked positions (-1 elsewhere)."""
    vocab = {token: i for i, token in enumerate((folder / "vocab.txt").read_text().splitlines())}
    rows = [[vocab["[CLS]"], *(vocab[t] for t in SMILES_TOKEN.findall(r)), vocab["[SEP]"]]
            for r in REACTIONS]
    length = max(map(len, rows))
    ids = torch.full((len(rows), length), vocab["[PAD]"])
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    atoms = torch.isin(ids, torch.tensor([vocab[a] for a in ("C", "c", "O", "N")]))
    chosen = atoms & (torch.cumsum(atoms, dim=1) % 4 == 0)
    targets = torch.where(chosen, ids, torch.full_like(ids, -1))
    return ids.masked_fill(chosen, vocab["[MASK]"]), mask, targets


def test_real_albert_masked_lm_matches_transformers(tmp_path: Path) -> None:
    source = rxnmapper_model()
    out = tmp_path / "rxnmapper"
    result = subprocess.run([sys.executable, "-m", "hfport.cli", "convert-pickle", str(source),
                             str(out)], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    state, report = hfport.load(out)  # strict, with the head AlbertForMaskedLM selects
    assert report.family == "albert" and report.head == "masked_lm"
    assert not report.missing and not report.unexpected and not report.mismatched
    assert report.tied == ["mlm.decoder.weight"]
    assert "pooler.weight" in state  # saved from pretraining; AlbertForMaskedLM has no pooler
    assert tuple(state["mlm.dense.weight"].shape) == (128, 256)

    model = hfport.models.from_pretrained(out)
    reference = reference_model(out, model.family)
    assert type(reference) is transformers.AlbertForMaskedLM
    ids, mask, targets = tokenized_reactions(out)
    parity = compare(model, reference, ids, attention_mask=mask)
    assert parity.ok, str(parity)
    assert [row.name for row in parity.rows] == [
        "embeddings", *(f"layers.{i}" for i in range(12)), "logits"]
    assert parity["logits"].rel_l2 < TOLERANCE and parity["logits"].shape == (4, ids.shape[1], 591)

    # The model is trained: it fills most masked atoms with the atom that was there.
    logits = torch.from_dlpack(model(ids, attention_mask=mask).logits)
    masked = targets >= 0
    assert masked.sum() >= 8
    accuracy = (logits.argmax(-1)[masked] == targets[masked]).float().mean().item()
    assert accuracy >= 0.75, accuracy

    # The checkpoint path through the CLI's comparison picks the same class and agrees too.
    assert compare_checkpoint(out, batch=2, seq=24, seed=3).ok
