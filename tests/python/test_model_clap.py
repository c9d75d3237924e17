"""The native CLAP model (HTSAT Swin audio tower, RoBERTa text tower) against transformers'
ClapModel.

Tiny random models (fixed seeds, every parameter and batch-norm statistic redrawn away from its
initial value, eager attention, float32), saved with save_pretrained and loaded by
hfport.models.from_pretrained:
  - "plain": fusion off, a 16x16 patch grid in 4x4 windows (shifted blocks with their region
    masks), two stages with a patch merge;
  - "fused": enable_fusion with the AFF block, a 10x10 grid in 3x3 windows (padded to 12x12, then
    5x5 padded to 6x6), a batch whose is_longer mixes True and False;
  - "fused_overlap": as fused but 3 stages (the last one window), a mel conv whose crops fill the
    grid's width, no qkv bias, no patch norm, gelu_new;
  - "mel_resize": 8 mel bins for a 10-bin-high spectrogram (reshape_mel2img resizes the mel
    axis), one stage of two 5x5 windows a side.
Every hidden state of both towers, the embeddings and both logits must be within relative L2
1e-5 of transformers' (the parity table holds a row per Swin block too).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import hfport.models
import hfport.ops
import pytest
import torch
import torch.nn.functional as F
import transformers
from hfport.errors import ArgumentError, ConfigError
from hfport.parity import compare, compare_checkpoint
from model_testing import relative_l2

transformers.utils.logging.set_verbosity_error()

TOLERANCE = 1e-5
TEXT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=40)
CASES: dict[str, dict[str, Any]] = {
    "plain": dict(spec_size=32, num_mel_bins=8, patch_size=2, patch_stride=2, window_size=4,
                  depths=[2, 2], num_attention_heads=[2, 4], patch_embeds_hidden_size=16,
                  hidden_size=32),
    "fused": dict(spec_size=40, num_mel_bins=8, patch_size=4, patch_stride=4, window_size=3,
                  depths=[2, 2], num_attention_heads=[2, 4], patch_embeds_hidden_size=16,
                  hidden_size=32, enable_fusion=True, fusion_type="aff_2d"),
    "fused_overlap": dict(spec_size=48, num_mel_bins=12, patch_size=2, patch_stride=2,
                          window_size=6, depths=[1, 2, 1], num_attention_heads=[2, 2, 4],
                          patch_embeds_hidden_size=8, hidden_size=32, enable_fusion=True,
                          fusion_type="aff_2d", aff_block_r=2, enable_patch_layer_norm=False,
                          hidden_act="gelu_new", qkv_bias=False),
    "mel_resize": dict(spec_size=20, num_mel_bins=8, patch_size=2, patch_stride=2, window_size=5,
                       depths=[2], num_attention_heads=[2], patch_embeds_hidden_size=16,
                       hidden_size=16),
}


def redraw_clap(model: torch.nn.Module, seed: int) -> None:
    """Matrices and convolutions ~ N(0, 1/fan_in); norm and batch-norm weights around 1; biases
    and relative position tables ~ N(0, 0.2^2); batch-norm running means ~ N(0, 0.3^2) and
    variances in [0.5, 1.5]; the logit scales near log(10)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.dim() == 0:
                p.copy_(math.log(10.0) + 0.3 * noise)
            elif p.dim() == 1 and not name.endswith("bias"):
                p.copy_(1.0 + 0.2 * noise)  # layer and batch norm weights
            elif name.endswith("bias") or "relative_position_bias_table" in name:
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / math.sqrt(p[0].numel()))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.3 * torch.randn(b.shape, generator=generator))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=generator))


def build(tmp_path: Path, case: str, seed: int = 0) -> tuple[Any, Any]:
    config = transformers.ClapConfig(text_config=TEXT, audio_config=CASES[case],
                                     projection_dim=24)
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    reference = transformers.ClapModel(config).eval()
    redraw_clap(reference, seed)
    reference.save_pretrained(tmp_path / case)
    return reference, hfport.models.from_pretrained(tmp_path / case)


def audio_inputs(case: str, seed: int, frames: int | None = None) -> tuple[torch.Tensor, Any]:
    """Features [3, channels, frames, mel bins] ~ N(0, 1) (frames: spec_size * freq_ratio unless
    given; fewer are resized by reshape_mel2img) and is_longer [3, 1] = True, False, True."""
    audio = CASES[case]
    ratio = audio["spec_size"] // audio["num_mel_bins"]
    channels = 4 if audio.get("enable_fusion") else 1
    frames = frames or audio["spec_size"] * ratio
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(3, channels, frames, audio["num_mel_bins"], generator=generator)
    longer = torch.tensor([[True], [False], [True]]) if channels == 4 else None
    return features, longer


def text_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 99, (2, 9), generator=generator)
    ids[:, 0] = 0
    mask = torch.ones(2, 9, dtype=torch.long)
    ids[1, 6:] = 1  # padding (pad_token_id 1) at the end of the second caption
    mask[1, 6:] = 0
    return ids, mask


def assert_close(got: Any, want: torch.Tensor, what: str) -> None:
    got_t = torch.from_dlpack(got)
    assert got_t.shape == want.shape, f"{what}: {list(got_t.shape)} vs {list(want.shape)}"
    error = relative_l2(got_t, want)
    assert error < TOLERANCE, f"{what}: relative L2 {error:.3e}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_audio_features_and_every_hidden_state(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, case)
    features, longer = audio_inputs(case, seed=1)
    out = native.get_audio_features(features, longer, output_hidden_states=True)
    with torch.no_grad():
        want = reference.get_audio_features(input_features=features, is_longer=longer,
                                            output_hidden_states=True)
    assert len(out.hidden_states) == len(want.hidden_states) == len(CASES[case]["depths"]) + 1
    for i, (got, expected) in enumerate(zip(out.hidden_states, want.hidden_states)):
        assert_close(got, expected, f"audio hidden state {i}")
    assert_close(out.last_hidden_state, want.last_hidden_state, "last_hidden_state")
    assert_close(out.pooler_output, want.pooler_output, "pooler_output (audio embeds)")


def test_fusion_is_per_example(tmp_path: Path) -> None:
    """is_longer selects the fused examples: an example's embedding depends on its own flag only,
    and flipping it changes that example's embedding."""
    reference, native = build(tmp_path, "fused", seed=2)
    features, longer = audio_inputs("fused", seed=3)
    mixed = torch.from_dlpack(native.get_audio_features(features, longer).pooler_output)
    alone = torch.from_dlpack(native.get_audio_features(features[1:2], longer[1:2]).pooler_output)
    assert relative_l2(mixed[1:2], alone) < TOLERANCE
    flipped = torch.from_dlpack(native.get_audio_features(
        features, torch.tensor([False, False, True])).pooler_output)
    assert relative_l2(flipped[0], mixed[0]) > 1e-3
    assert relative_l2(flipped[2], mixed[2]) < TOLERANCE
    with torch.no_grad():
        want = reference.get_audio_features(input_features=features,
                                            is_longer=torch.tensor([[False], [False], [True]]))
    assert_close(native.get_audio_features(features, torch.tensor([[0], [0], [1]])).pooler_output,
                 want.pooler_output, "is_longer given as integers")


def test_short_clips_are_resized_as_transformers_does(tmp_path: Path) -> None:
    """Fewer frames than spec_size * freq_ratio: reshape_mel2img's bicubic resize."""
    reference, native = build(tmp_path, "plain", seed=4)
    features, _ = audio_inputs("plain", seed=5, frames=77)
    with torch.no_grad():
        want = reference.get_audio_features(input_features=features)
    assert_close(native.get_audio_features(features).pooler_output, want.pooler_output,
                 "77 frames resized to 128")


def test_a_spectrogram_short_on_both_axes_is_refused_as_transformers_refuses_it(
        tmp_path: Path) -> None:
    reference, native = build(tmp_path, "mel_resize", seed=16)
    features, _ = audio_inputs("mel_resize", seed=17, frames=30)
    with pytest.raises(ValueError):
        reference.get_audio_features(input_features=features)
    with pytest.raises(ArgumentError, match=r"input_features of 30 frames and 8 mel bins cannot "
                       r"be made a 40x10 spectrogram"):
        native.get_audio_features(features)


def test_text_features_with_padding(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "plain", seed=6)
    ids, mask = text_inputs(seed=7)
    out = native.get_text_features(ids, mask, output_hidden_states=True)
    with torch.no_grad():
        want = reference.get_text_features(input_ids=ids, attention_mask=mask,
                                           output_hidden_states=True)
    assert len(out.hidden_states) == len(want.hidden_states) == TEXT["num_hidden_layers"] + 1
    keep = mask.bool()
    for i, (got, expected) in enumerate(zip(out.hidden_states, want.hidden_states)):
        assert relative_l2(torch.from_dlpack(got)[keep], expected[keep]) < TOLERANCE, i
    assert_close(out.pooler_output, want.pooler_output, "text embeds")
    # The padding is masked: the padded caption's embedding equals the caption alone.
    alone = native.get_text_features(ids[1:2, :6]).pooler_output
    assert relative_l2(torch.from_dlpack(alone)[0], torch.from_dlpack(out.pooler_output)[1]) \
        < TOLERANCE


@pytest.mark.parametrize("case", ["plain", "fused"])
def test_forward_logits_and_parity_table(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, case, seed=8)
    features, longer = audio_inputs(case, seed=9)
    ids, mask = text_inputs(seed=10)
    out = native(input_ids=ids, attention_mask=mask, input_features=features, is_longer=longer)
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask, input_features=features,
                         is_longer=longer)
    assert list(out)[:4] == ["logits_per_audio", "logits_per_text", "text_embeds",
                             "audio_embeds"]
    for name in ("logits_per_audio", "logits_per_text", "text_embeds", "audio_embeds"):
        assert_close(out[name], getattr(want, name), name)
    assert_close(out.audio_model_output.pooler_output, want.audio_model_output.pooler_output,
                 "audio pooler")
    assert_close(out.text_model_output.pooler_output, want.text_model_output.pooler_output,
                 "text pooler")
    report = compare(native, reference, ids, attention_mask=mask, input_features=features,
                     is_longer=longer)
    names = [row.name for row in report.rows]
    assert "audio.stages.0.blocks.1" in names and "audio.stages.1" in names
    assert names[-2:] == ["logits_per_audio", "logits_per_text"]
    assert report.ok, str(report)


def test_compare_checkpoint(tmp_path: Path) -> None:
    build(tmp_path, "fused", seed=11)
    report = compare_checkpoint(tmp_path / "fused", batch=2, seq=7, seed=12)
    assert report.ok, str(report)
    assert report["audio.stages.1.blocks.1"].shape == (2, 25, 32)
    # hfport.ops.clap_log_mel against ClapFeatureExtractor (the model's mel bins), shorter than
    # and equal to its 10 s, after the model's rows.
    front = [row for row in report.rows if row.name.startswith("front end")]
    assert [row.name for row in front] == ["front end 1.3 s", "front end 10 s"]
    assert report.rows[-1] is front[-1]
    mels = json.loads((tmp_path / "fused" / "config.json").read_text())["audio_config"]
    assert all(row.shape == (1, 4, 1001, mels["num_mel_bins"]) for row in front)


def test_bicubic_align_corners_is_torch() -> None:
    generator = torch.Generator().manual_seed(13)
    for shape, size in (((2, 3, 7, 5), (19, 5)), ((1, 2, 6, 9), (6, 17)), ((1, 1, 4, 4), (1, 9)),
                        ((2, 1, 13, 8), (40, 11))):
        x = torch.randn(shape, generator=generator)
        want = F.interpolate(x, size, mode="bicubic", align_corners=True)
        got = torch.from_dlpack(hfport.ops.interpolate_bicubic(x, size, align_corners=True))
        assert torch.equal(got, want) or relative_l2(got, want) < 1e-6, (shape, size)
    with pytest.raises(ArgumentError, match="align_corners goes with antialias off"):
        hfport.ops.interpolate_bicubic(x, (3, 3), True, align_corners=True)


def test_errors_name_what_was_expected(tmp_path: Path) -> None:
    _, plain = build(tmp_path, "plain", seed=14)
    _, fused = build(tmp_path, "fused", seed=15)
    with pytest.raises(ArgumentError, match=r"input_features has 7 mel bins .* num_mel_bins 8: "
                       r"expected \[batch, 1, time, 8\], got \[1, 1, 128, 7\]"):
        plain.get_audio_features(torch.zeros(1, 1, 128, 7))
    with pytest.raises(ArgumentError, match=r"input_features has 1 channels, but a model with "
                       r"enable_fusion reads 4 .* got \[2, 1, 200, 8\]"):
        fused.get_audio_features(torch.zeros(2, 1, 200, 8), torch.tensor([True, False]))
    with pytest.raises(ArgumentError, match="is_longer is required with enable_fusion"):
        fused.get_audio_features(torch.zeros(2, 4, 200, 8))
    with pytest.raises(ArgumentError, match=r"is_longer must be \[batch\] or \[batch, 1\] with "
                       r"batch 2, got \[3\]"):
        fused.get_audio_features(torch.zeros(2, 4, 200, 8), torch.tensor([True, False, True]))
    with pytest.raises(ArgumentError, match="201 frames, more than spec_size"):
        fused.get_audio_features(torch.zeros(1, 4, 201, 8), torch.tensor([True]))
    with pytest.raises(ArgumentError, match="needs both input_ids and input_features"):
        plain(input_ids=torch.zeros(1, 3, dtype=torch.long))


def test_configs_transformers_cannot_run_are_refused(tmp_path: Path) -> None:
    """A stage smaller than the window: transformers' own forward fails on it, and hfport says
    so when loading."""
    audio = dict(CASES["plain"], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
                 hidden_size=128)
    config = transformers.ClapConfig(text_config=TEXT, audio_config=audio, projection_dim=24)
    reference = transformers.ClapModel(config).eval()
    reference.save_pretrained(tmp_path / "small")
    with pytest.raises(ConfigError, match=r"stage 3 \(2x2\) is smaller than window_size 4"):
        hfport.models.from_pretrained(tmp_path / "small")
    with pytest.raises(RuntimeError):
        reference.get_audio_features(input_features=torch.zeros(1, 1, 128, 8))
