"""The native Wav2Vec2-BERT conformer encoder against transformers' Wav2Vec2BertModel.

Tiny random models (hidden 32, 2 conformer blocks, 4 heads, 20 input features; fixed seeds, every
parameter redrawn away from its initial value, eager attention, float32), saved with
save_pretrained and loaded by hfport.models.from_pretrained, for each position type the issue names
(relative_key with a narrow window, rotary, none) and other activations and kernel sizes. Every
hidden state (the projected features, then each block: what TTS systems take an intermediate layer
of) must be within relative L2 1e-5 of transformers' on the frames a padded batch keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hfport.models
import pytest
import torch
import transformers
from hfport.errors import ArgumentError, ConfigError
from hfport.parity import compare, compare_checkpoint
from model_testing import redraw, relative_l2

transformers.utils.logging.set_verbosity_error()

TOLERANCE = 1e-5
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             feature_projection_input_dim=20, output_hidden_size=32)
CASES: dict[str, dict[str, Any]] = {
    "relative_key": {"left_max_position_embeddings": 5, "right_max_position_embeddings": 3},
    "rotary": {"position_embeddings_type": "rotary", "rotary_embedding_base": 500},
    "none_gelu_kernel_5": {"position_embeddings_type": None, "hidden_act": "gelu",
                           "conv_depthwise_kernel_size": 5},
}


def build(tmp_path: Path, case: str, seed: int = 0, **overrides: Any) -> tuple[Any, Any]:
    config = transformers.Wav2Vec2BertConfig(**{**SIZES, **CASES[case], **overrides})
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    reference = transformers.Wav2Vec2BertModel(config).eval()
    redraw(reference, seed)
    reference.save_pretrained(tmp_path / case)
    return reference, hfport.models.from_pretrained(tmp_path / case)


def padded_features(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    features = torch.randn(3, 17, 20, generator=torch.Generator().manual_seed(seed))
    mask = torch.ones(3, 17, dtype=torch.long)
    mask[1, 11:] = 0  # a shorter utterance, padded at the end as the feature extractor pads
    mask[2, 4:] = 0
    return features, mask


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_layer_matches_transformers(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, case)
    assert native.family == "wav2vec2-bert" and native.main_input_name == "input_features"
    features, mask = padded_features(seed=1)
    report = compare(native, reference, features, attention_mask=mask)
    assert [row.name for row in report.rows] == [
        "feature_projection", "layers.0", "layers.1", "last_hidden_state"]
    assert report.ok, str(report)
    # The padding is applied: a padded utterance's frames equal the same utterance alone.
    alone = native(features[2:3, :4]).last_hidden_state
    padded = native(input_features=features, attention_mask=mask).last_hidden_state
    assert relative_l2(torch.from_dlpack(padded)[2, :4], torch.from_dlpack(alone)[0]) < TOLERANCE
    unmasked = native(input_features=features).last_hidden_state
    assert relative_l2(torch.from_dlpack(unmasked)[2, :4], torch.from_dlpack(alone)[0]) > 1e-3


def test_an_intermediate_layer_as_tts_systems_take_it(tmp_path: Path) -> None:
    """output_hidden_states in transformers' order: entry i + 1 is block i's output."""
    reference, native = build(tmp_path, "relative_key", seed=2, num_hidden_layers=3)
    features, mask = padded_features(seed=3)
    out = native(features, attention_mask=mask, output_hidden_states=True)
    with torch.no_grad():
        want = reference(input_features=features, attention_mask=mask,
                         output_hidden_states=True)
    assert len(out.hidden_states) == len(want.hidden_states) == 4
    keep = mask.bool()
    layer = torch.from_dlpack(out.hidden_states[2])
    assert relative_l2(layer[keep], want.hidden_states[2][keep]) < TOLERANCE


def test_compare_checkpoint_on_random_features(tmp_path: Path) -> None:
    build(tmp_path, "rotary", seed=4)
    report = compare_checkpoint(tmp_path / "rotary", batch=2, seq=9, seed=5)
    assert report.ok and report.rows[0].shape == (2, 9, 32), str(report)
    # hfport.ops.fbank against SeamlessM4TFeatureExtractor, after the model's rows: 0.7 s is
    # 68 frames of 10 ms, stacked in pairs.
    front = [row for row in report.rows if row.name.startswith("front end")]
    assert [row.name for row in front] == ["front end 0.7 s", "front end 3.1 s"]
    assert front[0].shape == (1, 34, 160) and report.rows[-1] is front[-1]


def test_errors_name_what_was_expected(tmp_path: Path) -> None:
    _, native = build(tmp_path, "relative_key", seed=6)
    with pytest.raises(ArgumentError, match=r"input_features must be \[batch, frames, 20\] "
                       r"\(feature_projection_input_dim 20\), got \[2, 5, 19\]"):
        native(torch.zeros(2, 5, 19))
    with pytest.raises(ArgumentError, match=r"attention_mask must have shape \[2, 5\]|"
                       r"attention_mask.*\[2, 5\]"):
        native(torch.zeros(2, 5, 20), attention_mask=torch.ones(2, 6))


def test_adapter_is_refused(tmp_path: Path) -> None:
    """The adapter (add_adapter) is not ported: both loads say so, neither runs without it."""
    config = transformers.Wav2Vec2BertConfig(**SIZES, add_adapter=True, num_adapter_layers=1)
    transformers.Wav2Vec2BertModel(config).save_pretrained(tmp_path / "adapter")
    # Strict: the adapter's tensors are unexpected (the spec maps none); permissive: the model
    # refuses to run without them rather than skip a stage silently.
    with pytest.raises(hfport.errors.LoadError, match="22 unexpected"):
        hfport.models.from_pretrained(tmp_path / "adapter")
    with pytest.raises(ConfigError, match="add_adapter is not supported"):
        hfport.models.from_pretrained(tmp_path / "adapter", strict=False)


def test_audio_through_hfports_front_end_and_model(tmp_path: Path) -> None:
    """Raw audio to features to hidden states, all native, against the feature extractor and
    transformers' model: utterances of different lengths in one batch."""
    import numpy as np

    reference, native = build(tmp_path, "relative_key", seed=8, feature_projection_input_dim=160)
    rng = np.random.default_rng(9)
    waves = [(0.3 * np.sin(np.arange(n) * 0.05) + 0.05 * rng.standard_normal(n)).astype(np.float32)
             for n in (8000, 5200)]
    extractor = transformers.SeamlessM4TFeatureExtractor()
    want_inputs = extractor(waves, sampling_rate=16000, return_tensors="pt", padding=True)
    audio = np.zeros((2, 8000), np.float32)
    for i, w in enumerate(waves):
        audio[i, : len(w)] = w
    features, mask = hfport.ops.fbank(audio, sampling_rate=16000, lengths=np.array([8000, 5200]))
    assert torch.equal(torch.from_dlpack(mask), want_inputs["attention_mask"])
    got = native(input_features=features, attention_mask=mask).last_hidden_state
    with torch.no_grad():
        want = reference(**want_inputs).last_hidden_state
    keep = want_inputs["attention_mask"].bool()
    assert relative_l2(torch.from_dlpack(got)[keep], want[keep]) < TOLERANCE
