"""The native ViT, DINOv2, DINOv2-with-registers, DINOv3 and VideoMAE encoders against transformers.

Tiny random models (hidden 32, 2 layers, 4 heads, 32x32 images of 8x8 patches; fixed seeds, every
parameter redrawn away from its initial value, layer scales around 1 but not 1, eager attention,
float32) are saved with save_pretrained and loaded by hfport.models.from_pretrained. Every hidden
state, last_hidden_state, the pooler output and the classifier's logits must be within relative
L2 1e-5 of transformers', at the config's image size and at 48x40 with the positions resized
(interpolate_pos_encoding for ViT; DINOv2 always resizes; DINOv3's RoPE table is built for any
grid: registers on and off, the gated MLP, q/k/v and MLP biases switched, another rope_theta).
Then the mask-token path, the input
dtypes, and the errors a caller meets, each naming what was expected. VideoMAE (4 frames of 16x16,
tubelets of 2): base and video classifier, mean pooling on and off, q/k/v biases on and off, the
masked tubelets dropped, and the videos it refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hfport.models
import pytest
import torch
import transformers
from hfport.errors import ArgumentError
from model_testing import redraw, relative_l2

transformers.utils.logging.set_verbosity_error()

TOLERANCE = 1e-5
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=32,
             patch_size=8)

# case -> (transformers class, config class, config fields)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "vit": ("ViTModel", "ViTConfig", {"intermediate_size": 48}),
    "vit_tanh_gelu_no_qkv_bias": ("ViTModel", "ViTConfig", {
        "intermediate_size": 40, "hidden_act": "gelu_pytorch_tanh", "qkv_bias": False,
        "layer_norm_eps": 1e-6, "num_channels": 1}),
    "vit_classifier": ("ViTForImageClassification", "ViTConfig",
                       {"intermediate_size": 48, "num_labels": 5}),
    "dinov2": ("Dinov2Model", "Dinov2Config", {}),
    "dinov2_swiglu": ("Dinov2Model", "Dinov2Config", {"use_swiglu_ffn": True, "mlp_ratio": 3}),
    "dinov2_classifier": ("Dinov2ForImageClassification", "Dinov2Config", {"num_labels": 4}),
    "dinov2_registers": ("Dinov2WithRegistersModel", "Dinov2WithRegistersConfig",
                         {"num_register_tokens": 3}),
    "dinov2_registers_swiglu_classifier": (
        "Dinov2WithRegistersForImageClassification", "Dinov2WithRegistersConfig",
        {"num_register_tokens": 2, "use_swiglu_ffn": True, "num_labels": 3}),
    "dinov3": ("DINOv3ViTModel", "DINOv3ViTConfig",
               {"intermediate_size": 48, "num_register_tokens": 2}),
    "dinov3_gated_key_bias_no_mlp_bias": ("DINOv3ViTModel", "DINOv3ViTConfig", {
        "intermediate_size": 40, "use_gated_mlp": True, "hidden_act": "silu", "key_bias": True,
        "query_bias": False, "mlp_bias": False, "proj_bias": False, "num_register_tokens": 0,
        "rope_theta": 1000.0}),
}


def build(tmp_path: Path, case: str, seed: int = 0, model_kwargs: dict[str, Any] | None = None,
          **overrides: Any) -> tuple[Any, hfport.models.Model]:
    class_name, config_name, fields = CASES[case]
    config = getattr(transformers, config_name)(**SIZES, **{**fields, **overrides})
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    reference = getattr(transformers, class_name)(config, **(model_kwargs or {})).eval()
    redraw(reference, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if name.endswith("lambda1"):  # layer scale: around 1, never 1
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=generator))
            elif name.endswith(("mask_token", "register_tokens")):
                p.copy_(torch.randn(p.shape, generator=generator))
    folder = tmp_path / case
    reference.save_pretrained(folder)
    return reference, hfport.models.from_pretrained(folder)


def pixels(batch: int, height: int, width: int, channels: int = 3, seed: int = 3) -> torch.Tensor:
    return torch.randn((batch, channels, height, width),
                       generator=torch.Generator().manual_seed(seed))


def run_both(reference: Any, native: hfport.models.Model, x: torch.Tensor,
             resize: bool = False, **native_options: Any) -> tuple[Any, dict[str, Any]]:
    options = {"interpolate_pos_encoding": True} if resize and native.family == "vit" else {}
    with torch.no_grad():
        want = reference(pixel_values=x, output_hidden_states=True, **options,
                         **{k: v for k, v in native_options.items() if k == "bool_masked_pos"})
    got = native.forward(pixel_values=x, output_hidden_states=True,
                         interpolate_pos_encoding=resize, **native_options)
    return want, got


def assert_matches(want: Any, got: dict[str, Any]) -> None:
    hidden = [torch.from_dlpack(h) for h in got["hidden_states"]]
    assert len(hidden) == len(want.hidden_states) == SIZES["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(hidden, want.hidden_states)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        assert relative_l2(a, b) < TOLERANCE, f"hidden_states[{i}]"
    if getattr(want, "last_hidden_state", None) is not None:
        assert relative_l2(torch.from_dlpack(got["last_hidden_state"]),
                           want.last_hidden_state) < TOLERANCE
    if getattr(want, "pooler_output", None) is not None:
        assert relative_l2(torch.from_dlpack(got["pooler_output"]), want.pooler_output) < TOLERANCE
    else:
        assert "pooler_output" not in got
    if getattr(want, "logits", None) is not None:
        logits = torch.from_dlpack(got["logits"])
        assert logits.shape == want.logits.shape
        assert relative_l2(logits, want.logits) < TOLERANCE
    else:
        assert "logits" not in got


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_output_matches_transformers(tmp_path: Path, case: str) -> None:
    reference, native = build(tmp_path, case)
    assert native.main_input_name == "pixel_values"
    channels = reference.config.num_channels
    for batch, height, width, resize in ((2, 32, 32, False), (1, 48, 40, True)):
        want, got = run_both(reference, native, pixels(batch, height, width, channels), resize)
        assert_matches(want, got)
        registers = getattr(reference.config, "num_register_tokens", 0)
        tokens = 1 + registers + (height // 8) * (width // 8)
        assert tuple(got["hidden_states"][0].shape) == (batch, tokens, 32)


def test_sizes_that_do_not_tile_and_a_smaller_image(tmp_path: Path) -> None:
    # 44x37: the conv floors to a 5x4 grid; 16x16: positions shrunk to 2x2 (antialiased for the
    # registers variant, whose filter then widens).
    for case in ("vit", "dinov2", "dinov2_registers", "dinov3"):
        reference, native = build(tmp_path, case)
        for height, width in ((44, 37), (16, 16), (8, 40)):
            want, got = run_both(reference, native, pixels(2, height, width), resize=True)
            assert_matches(want, got)


def test_a_square_image_of_another_size_is_resized(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "vit_classifier")
    want, got = run_both(reference, native, pixels(1, 56, 56), resize=True)
    assert_matches(want, got)
    assert tuple(got["hidden_states"][0].shape) == (1, 1 + 49, 32)


def test_mask_token_replaces_the_masked_patches(tmp_path: Path) -> None:
    masked = torch.zeros(2, 16, dtype=torch.bool)
    masked[0, [0, 5, 15]] = True
    masked[1, 3:9] = True
    cases = [("vit", {"model_kwargs": {"use_mask_token": True}}), ("dinov2", {}),
             ("dinov2_registers", {}), ("dinov3", {})]
    for case, options in cases:
        reference, native = build(tmp_path, case, **options)
        x = pixels(2, 32, 32)
        want, got = run_both(reference, native, x, bool_masked_pos=masked)
        assert_matches(want, got)
        unmasked = torch.from_dlpack(native.forward(pixel_values=x)["last_hidden_state"])
        assert relative_l2(torch.from_dlpack(got["last_hidden_state"]), unmasked) > 1e-3
        # Integers 0/1 mean the same as bools.
        as_ints = native.forward(pixel_values=x, bool_masked_pos=masked.to(torch.int64))
        assert torch.equal(torch.from_dlpack(as_ints["last_hidden_state"]),
                           torch.from_dlpack(got["last_hidden_state"]))


def test_mask_without_a_mask_token(tmp_path: Path) -> None:
    masked = torch.ones(1, 16, dtype=torch.bool)
    x = pixels(1, 32, 32)
    _, vit = build(tmp_path, "vit")  # ViTModel has no mask token unless asked for one
    with pytest.raises(ArgumentError, match=r"native vit model: bool_masked_pos needs the "
                       r"checkpoint's mask token \(embeddings.mask_token\)"):
        vit.forward(pixel_values=x, bool_masked_pos=masked)
    # Dinov2Model without use_mask_token ignores bool_masked_pos, as transformers does.
    reference, dinov2 = build(tmp_path, "dinov2", use_mask_token=False)
    want, got = run_both(reference, dinov2, x, bool_masked_pos=masked)
    assert_matches(want, got)


def test_mask_errors_name_the_expected_shape(tmp_path: Path) -> None:
    _, native = build(tmp_path, "dinov2")
    x = pixels(2, 32, 32)
    with pytest.raises(ArgumentError, match=r"bool_masked_pos must be \[batch, num_patches\] = "
                       r"\[2, 16\], got \[2, 17\]"):
        native.forward(pixel_values=x, bool_masked_pos=torch.zeros(2, 17, dtype=torch.bool))
    with pytest.raises(ArgumentError, match=r"holds 2; only 1 \(masked\) and 0"):
        native.forward(pixel_values=x, bool_masked_pos=torch.full((2, 16), 2))
    with pytest.raises(ArgumentError, match="bool or integer tensor, got F32"):
        native.forward(pixel_values=x, bool_masked_pos=torch.zeros(2, 16))


def test_pixel_dtypes_positional_call_and_head_output(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "vit_classifier")
    x = pixels(2, 32, 32)
    logits = torch.from_dlpack(native(x).logits)  # the first argument of a vision model is its pixels
    assert logits.shape == (2, 5)
    assert torch.equal(logits, torch.from_dlpack(native(pixel_values=x).logits))
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        narrow = x.to(dtype)
        got = torch.from_dlpack(native(pixel_values=narrow).logits)
        with torch.no_grad():
            want = reference(pixel_values=narrow.float()).logits
        assert relative_l2(got, want) < TOLERANCE, dtype
    # Strided pixels (channels last) read in place.
    strided = x.to(memory_format=torch.channels_last)
    assert torch.equal(torch.from_dlpack(native(strided).logits), logits)
    out = native(x, output_hidden_states=True)
    main, hidden = out.logits, out.hidden_states
    assert torch.equal(torch.from_dlpack(main), logits) and len(hidden) == 3


def test_vit_without_pooler_returns_no_pooled(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "vit", model_kwargs={"add_pooling_layer": False})
    want, got = run_both(reference, native, pixels(1, 32, 32))
    assert want.pooler_output is None and "pooler_output" not in got
    assert_matches(want, got)


def test_bad_pixels_name_the_expected_shape(tmp_path: Path) -> None:
    _, vit = build(tmp_path, "vit")
    with pytest.raises(ArgumentError, match=r"native vit model: pixel_values must be \[batch, 3, "
                       r"32, 32\] \(config.json's image_size 32\), got \[2, 3, 48, 40\]; pass "
                       r"interpolate_pos_encoding=True"):
        vit(pixel_values=pixels(2, 48, 40))
    with pytest.raises(ArgumentError, match=r"pixel_values must be \[batch, 3, height, width\] "
                       r"\(num_channels 3, batch >= 1\), got \[2, 4, 32, 32\]"):
        vit(pixel_values=pixels(2, 32, 32, channels=4))
    with pytest.raises(ArgumentError, match=r"got \[3, 32, 32\]"):
        vit(pixel_values=torch.randn(3, 32, 32))
    with pytest.raises(ArgumentError, match=r"pixel_values must be at least one patch \(8x8\) "
                       r"high and wide, got \[1, 3, 32, 7\]"):
        vit(pixel_values=pixels(1, 32, 7), interpolate_pos_encoding=True)
    _, dinov2 = build(tmp_path, "dinov2")
    with pytest.raises(ArgumentError, match=r"native dinov2 model: pixel_values must be at least "
                       r"one patch \(8x8\) high and wide, got \[1, 3, 6, 32\]"):
        dinov2(pixel_values=pixels(1, 6, 32))
    with pytest.raises(ArgumentError, match="must be a float tensor .* got I64"):
        dinov2(pixel_values=torch.zeros(1, 3, 32, 32, dtype=torch.int64))


def test_inputs_of_the_wrong_kind_are_refused(tmp_path: Path) -> None:
    _, vit = build(tmp_path, "vit")
    ids = torch.zeros(1, 4, dtype=torch.int64)
    with pytest.raises(ArgumentError, match="pass input_ids or pixel_values, not both"):
        vit.forward(ids, pixel_values=pixels(1, 32, 32))
    with pytest.raises(ArgumentError, match="attention_mask and token_type_ids go with input_ids"):
        vit.forward(pixel_values=pixels(1, 32, 32), attention_mask=ids)
    with pytest.raises(ArgumentError, match="pixel_values is required"):
        vit.forward()
    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=4, intermediate_size=48)
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    bert = hfport.models.from_pretrained(tmp_path / "bert")
    assert bert.main_input_name == "input_ids"
    with pytest.raises(ArgumentError, match="native bert model: takes input_ids, not pixel_values"):
        bert(pixel_values=pixels(1, 32, 32))
    with pytest.raises(ArgumentError, match="interpolate_pos_encoding and bool_masked_pos go with "
                       "pixel_values"):
        bert(ids, interpolate_pos_encoding=True)
    with pytest.raises(ArgumentError, match="image_size is for the vision families; bert takes "
                       "token ids"):
        hfport.parity.compare_checkpoint(tmp_path / "bert", image_size=40)


def test_parity_report_on_pixels(tmp_path: Path) -> None:
    reference, native = build(tmp_path, "dinov2_registers")
    report = hfport.parity.compare(native, reference, pixels(2, 40, 24),
                                   interpolate_pos_encoding=True, title="registers")
    assert report.ok, str(report)
    assert [row.name for row in report.rows] == ["embeddings", "layers.0", "layers.1",
                                                 "last_hidden_state", "pooler_output"]
    with pytest.raises(ValueError, match=r"pixel values \[batch, channels, height, width\]"):
        hfport.parity.compare(native, reference, torch.zeros(2, 8, dtype=torch.int64))


# VideoMAE: videos [batch, frames, channels, H, W] of 4 frames of 16x16, tubelets of 2 frames.
VIDEO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             image_size=16, patch_size=8, num_frames=4, tubelet_size=2)


def build_video(tmp_path: Path, class_name: str, seed: int = 0,
                **overrides: Any) -> tuple[Any, hfport.models.Model]:
    config = transformers.VideoMAEConfig(**{**VIDEO, **overrides})
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    reference = getattr(transformers, class_name)(config).eval()
    redraw(reference, seed)
    folder = tmp_path / f"{class_name}_{len(list(tmp_path.iterdir()))}"
    reference.save_pretrained(folder)
    return reference, hfport.models.from_pretrained(folder)


def video(batch: int, frames: int = 4, size: int = 16, seed: int = 4) -> torch.Tensor:
    return torch.randn((batch, frames, 3, size, size), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("class_name", ["VideoMAEModel", "VideoMAEForVideoClassification"])
@pytest.mark.parametrize("mean_pooling", [True, False])
def test_videomae_matches_transformers(tmp_path: Path, class_name: str,
                                       mean_pooling: bool) -> None:
    labels = {"num_labels": 3} if "Classification" in class_name else {}
    reference, native = build_video(tmp_path, class_name, use_mean_pooling=mean_pooling,
                                    qkv_bias=mean_pooling, **labels)
    assert native.family == "videomae" and native.main_input_name == "pixel_values"
    x = video(2)
    with torch.no_grad():
        want = reference(pixel_values=x, output_hidden_states=True)
    got = native.forward(pixel_values=x, output_hidden_states=True)
    assert_matches(want, got)
    assert tuple(got["hidden_states"][0].shape) == (2, 2 * 2 * 2, 32)
    # The frames may come in any strides (here a [batch, channels, frames, H, W] buffer).
    strided = x.permute(0, 2, 1, 3, 4).contiguous().permute(0, 2, 1, 3, 4)
    again = native.forward(pixel_values=strided)
    assert torch.equal(torch.from_dlpack(again["last_hidden_state"]),
                       torch.from_dlpack(got["last_hidden_state"]))


def test_videomae_mask_drops_the_masked_tubelets(tmp_path: Path) -> None:
    reference, native = build_video(tmp_path, "VideoMAEModel")
    masked = torch.zeros(2, 8, dtype=torch.bool)
    masked[0, [1, 2, 6]] = True
    masked[1, [0, 3, 7]] = True
    x = video(2)
    with torch.no_grad():
        want = reference(pixel_values=x, bool_masked_pos=masked, output_hidden_states=True)
    got = native.forward(pixel_values=x, bool_masked_pos=masked, output_hidden_states=True)
    assert_matches(want, got)
    assert tuple(got["last_hidden_state"].shape) == (2, 5, 32)
    uneven = masked.clone()
    uneven[1, 5] = True
    with pytest.raises(ArgumentError, match="must mask as many tubelets in every video .* row 0 "
                       "keeps 5, row 1 keeps 4"):
        native.forward(pixel_values=x, bool_masked_pos=uneven)


def test_videomae_bad_videos_name_the_expected_shape(tmp_path: Path) -> None:
    _, native = build_video(tmp_path, "VideoMAEModel")
    with pytest.raises(ArgumentError, match=r"pixel_values has 3 frames, not a multiple of "
                       r"tubelet_size 2: \[1, 3, 3, 16, 16\]"):
        native(pixel_values=video(1, frames=3))
    with pytest.raises(ArgumentError, match=r"pixel_values must be \[batch, 4, 3, 16, 16\] "
                       r"\(config.json's num_frames 4: the sin-cos positions are for 2 "
                       r"tubelets\), got \[1, 6, 3, 16, 16\]"):
        native(pixel_values=video(1, frames=6))
    with pytest.raises(ArgumentError, match=r"pixel_values must be \[batch, num_frames, "
                       r"num_channels, height, width\] = \[batch, 4, 3, 16, 16\]"):
        native(pixel_values=video(1, size=24))
    with pytest.raises(ArgumentError, match=r"got \[1, 3, 16, 16\]"):
        native(pixel_values=torch.randn(1, 3, 16, 16))
    with pytest.raises(ArgumentError, match="interpolate_pos_encoding is not supported"):
        native(pixel_values=video(1), interpolate_pos_encoding=True)


def test_cli_parity_on_a_vision_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import hfport.parity
    from hfport.cli import main

    build(tmp_path, "vit_classifier")
    folder = str(tmp_path / "vit_classifier")
    assert main(["parity", folder, "--image-size", "40", "24", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and "pixels 40x24 (positions resized)" in report["title"]
    assert [row["name"] for row in report["rows"]][-1] == "logits"
    assert report["rows"][0]["shape"] == [2, 1 + 5 * 3, 32]

    real = hfport.parity.reference_model

    def perturbed(path: Path, family: str, **options: object) -> torch.nn.Module:
        model = real(path, family, **options)
        with torch.no_grad():
            model.vit.layers[1].mlp.fc2.weight.mul_(1.01)
        return model

    monkeypatch.setattr(hfport.parity, "reference_model", perturbed)
    assert main(["parity", folder]) == 1
    assert "first divergent: layers.1" in capsys.readouterr().out


def test_dinov3_refuses_a_head_size_its_rope_cannot_split(tmp_path: Path) -> None:
    """Two axes of cos/sin pairs need head_dim % 4 == 0; transformers would fail deep inside."""
    config = transformers.DINOv3ViTConfig(**{**SIZES, "num_attention_heads": 16,
                                             "hidden_size": 96}, intermediate_size=48)
    transformers.DINOv3ViTModel(config).save_pretrained(tmp_path / "odd")
    with pytest.raises(hfport.errors.ConfigError, match=r"head size hidden_size / "
                       r"num_attention_heads \(96 / 16\) must be a multiple of 4"):
        hfport.models.from_pretrained(tmp_path / "odd")
