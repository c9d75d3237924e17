"""The native image encoders (ViT, DINOv2, DINOv2 with registers, DINOv3, timm's ViT) and VideoMAE
(transformers' and OpenGVLab's) on a GPU.

The tiny models of test_model_vision.py / test_model_vision_timm.py, loaded with device="cuda":
every hidden state, last_hidden_state, the pooled output and the logits must match transformers
run on the same GPU (float32: relative L2 < 1e-4 per row, with TF32 off on torch's side) and
hfport's own CPU forward (which the CPU tests pin to 1e-5), at the config's image size and at one
whose positions are resized; the mask-token path; a bf16 checkpoint: last_hidden_state within the
bf16 bound (1e-2) of transformers in bf16, and every row within 1e-4 of transformers in f32 on the
same bf16-rounded weights (the native encoders widen a bf16 checkpoint and compute in f32 on both
devices). Then
hfport.ops.patch_embed on CUDA against the CPU op, and the errors: pixels on the wrong device,
and a machine without a device. VideoMAE (the tiny videos of test_model_vision.py and
test_model_vision_timm.py): every row against transformers on the GPU and against the CPU forward,
the mask that drops tubelets, strided and F64 videos, a bf16 checkpoint as above; OpenGVLab's
naming against its reference (transformers' blocks with its tail, run on the CPU) and against the
CPU forward in f32 and bf16. Every GPU test skips without one (cuda_testing.needs_cuda).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hfport
import hfport.models
import pytest
import torch
from cuda_testing import HAS_CUDA, needs_cuda
from hfport.errors import DeviceError
from model_testing import relative_l2
from test_model_vision import CASES, VIDEO, build, build_video, pixels, video
from test_model_vision_timm import OPENGVLAB_CASES, TIMM_CASES, build_opengvlab, build_timm
from test_model_vision_timm import video as opengvlab_video

F32_TOLERANCE = 1e-4
BF16_TOLERANCE = 1e-2
# Where the GPU tests put the native model, the reference and the inputs. Only a dry run of the
# tests' own logic on a machine without a GPU sets it to "cpu"; every test here reads it.
DEVICE = "cuda"


@pytest.fixture(autouse=True)
def no_tf32() -> Iterator[None]:
    """transformers' patch embedding is a cuDNN convolution, which rounds to TF32 by default."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def native_on_cuda(folder: Path, dtype: str = "float32", **options: Any) -> hfport.models.Model:
    return hfport.models.from_pretrained(folder, dtype=dtype, device=DEVICE, **options)


def outputs(got: Any) -> dict[str, torch.Tensor]:
    """Every output of a native forward by a row name, hidden_states[i] as hidden_states.i."""
    rows = {f"hidden_states.{i}": torch.from_dlpack(h) for i, h in enumerate(got["hidden_states"])}
    for key in ("last_hidden_state", "pooler_output", "logits"):
        if key in got:
            rows[key] = torch.from_dlpack(got[key])
    return rows


def reference_outputs(want: Any) -> dict[str, torch.Tensor]:
    rows = {f"hidden_states.{i}": h for i, h in enumerate(want.hidden_states)}
    for key in ("last_hidden_state", "pooler_output", "logits"):
        if getattr(want, key, None) is not None:
            rows[key] = getattr(want, key)
    return rows


def assert_rows_match(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                      tolerance: float, on_gpu: bool = True) -> None:
    # Every row the expected side has (a native classifier also returns last_hidden_state, which
    # transformers' classifier output lacks).
    assert expected.keys() <= actual.keys()
    for name, want in expected.items():
        tensor = actual[name]
        assert tensor.device.type == (DEVICE if on_gpu else "cpu"), name
        assert tensor.shape == want.shape, name
        assert relative_l2(tensor.cpu(), want.cpu()) < tolerance, name


def forward_on_cuda(native: hfport.models.Model, x: torch.Tensor, resize: bool,
                    **options: Any) -> dict[str, torch.Tensor]:
    return outputs(native.forward(pixel_values=x.to(DEVICE), output_hidden_states=True,
                                  interpolate_pos_encoding=resize, **options))


def reference_on_cuda(reference: Any, x: torch.Tensor, resize: bool,
                      dtype: torch.dtype = torch.float32, **options: Any) -> dict[str, torch.Tensor]:
    extra = {"interpolate_pos_encoding": True} if resize and reference.config.model_type == "vit" \
        else {}
    model = reference.to(device=DEVICE, dtype=dtype)
    with torch.no_grad():
        want = model(pixel_values=x.to(device=DEVICE, dtype=dtype), output_hidden_states=True,
                     **extra, **options)
    return reference_outputs(want)


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is visible here")
def test_vision_model_on_cuda_without_a_device_says_why(tmp_path: Path) -> None:
    build(tmp_path, "vit")
    with pytest.raises(DeviceError, match="cuda:0"):
        native_on_cuda(tmp_path / "vit")


@needs_cuda
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_output_matches_transformers_on_cuda(tmp_path: Path, case: str) -> None:
    reference, on_cpu = build(tmp_path, case)
    native = native_on_cuda(tmp_path / case)
    channels = reference.config.num_channels
    # The config's size, then 48x40: positions resized (DINOv3: a RoPE table of another grid).
    for batch, height, width, resize in ((2, 32, 32, False), (1, 48, 40, True)):
        x = pixels(batch, height, width, channels)
        got = forward_on_cuda(native, x, resize)
        assert_rows_match(got, reference_on_cuda(reference, x, resize), F32_TOLERANCE)
        cpu = outputs(on_cpu.forward(pixel_values=x, output_hidden_states=True,
                                     interpolate_pos_encoding=resize))
        assert_rows_match({k: v.cpu() for k, v in got.items()}, cpu, F32_TOLERANCE, on_gpu=False)


@needs_cuda
def test_mask_token_and_pixel_layouts_on_cuda(tmp_path: Path) -> None:
    masked = torch.zeros(2, 16, dtype=torch.bool)
    masked[0, [0, 5, 15]] = True
    masked[1, 3:9] = True
    for case, options in [("vit", {"model_kwargs": {"use_mask_token": True}}), ("dinov2", {}),
                          ("dinov2_registers", {}), ("dinov3", {})]:
        reference, _ = build(tmp_path, case, **options)
        native = native_on_cuda(tmp_path / case)
        x = pixels(2, 32, 32)
        got = forward_on_cuda(native, x, False, bool_masked_pos=masked.to(DEVICE))
        want = reference_on_cuda(reference, x, False, bool_masked_pos=masked.to(DEVICE))
        assert_rows_match(got, want, F32_TOLERANCE)
        # Channels-last and F64 pixels are read on the device as they are.
        plain = torch.from_dlpack(native(x.to(DEVICE)).last_hidden_state)
        strided = x.to(DEVICE).to(memory_format=torch.channels_last)
        assert torch.equal(torch.from_dlpack(native(strided).last_hidden_state), plain)
        wide = torch.from_dlpack(native(x.double().to(DEVICE)).last_hidden_state)
        assert torch.equal(wide, plain)


@needs_cuda
@pytest.mark.parametrize("case", ["vit_classifier", "vit", "dinov2_registers_swiglu_classifier",
                                  "dinov2_registers", "dinov3_gated_key_bias_no_mlp_bias"])
def test_bf16_checkpoint_on_cuda(tmp_path: Path, case: str) -> None:
    reference, _ = build(tmp_path, case)
    native = native_on_cuda(tmp_path / case, dtype="bfloat16")
    x = pixels(2, 32, 32)
    got = forward_on_cuda(native, x.bfloat16(), False)
    # Against transformers in f32 on the same bf16-rounded parameters and pixels: every row,
    # tightly (only the parameters are rounded: DINOv3's RoPE buffer stays f32, as hfport's table).
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.bfloat16().float())
    rounded = reference_on_cuda(reference, x.bfloat16().float(), False)
    assert_rows_match(got, rounded, F32_TOLERANCE)
    # Against transformers in bf16 (the bound) on last_hidden_state, which base models
    # return. Not on the pooled output or the logits: a few numbers per image, on which
    # transformers' own bf16 rounding reaches 1.5e-2 (measured on the CPU); the f32 check above
    # holds them to 1e-4.
    want = reference_on_cuda(reference, x, False, dtype=torch.bfloat16)
    if "last_hidden_state" in want:
        assert relative_l2(got["last_hidden_state"].cpu(),
                           want["last_hidden_state"].float().cpu()) < BF16_TOLERANCE


@needs_cuda
@pytest.mark.parametrize("case", sorted(TIMM_CASES))
def test_timm_vit_on_cuda_matches_its_cpu_forward(tmp_path: Path, case: str) -> None:
    on_cpu, _, _, args = build_timm(tmp_path, case)
    native = native_on_cuda(tmp_path / case, family="timm_vit")
    x = pixels(2, *args["img_size"])
    got = forward_on_cuda(native, x, False)
    cpu = outputs(on_cpu.forward(pixel_values=x, output_hidden_states=True))
    assert_rows_match({k: v.cpu() for k, v in got.items()}, cpu, F32_TOLERANCE, on_gpu=False)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_patch_embed_op_on_cuda_matches_the_cpu(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(7)
    tolerance = 1e-5 if dtype == torch.float32 else BF16_TOLERANCE
    # 2-D: sizes that do not tile (floored), channels last; 3-D: tubelets of 2 frames.
    cases = [((2, 3, 37, 29), (16, 3, 8, 8), 8, False), ((1, 1, 14, 21), (5, 1, 7, 7), 7, True),
             ((2, 3, 5, 16, 16), (12, 3, 2, 8, 8), (2, 8, 8), False)]
    for pixel_shape, weight_shape, patch, channels_last in cases:
        x = torch.randn(pixel_shape, generator=generator).to(dtype)
        w = torch.randn(weight_shape, generator=generator)
        b = torch.randn(weight_shape[0], generator=generator)
        if channels_last:
            x = x.to(memory_format=torch.channels_last)
        want = torch.from_dlpack(hfport.ops.patch_embed(x, w, b, patch))
        got = torch.from_dlpack(hfport.ops.patch_embed(x.to(DEVICE), w.to(DEVICE), b.to(DEVICE), patch))
        assert got.device.type == DEVICE and got.dtype == dtype and got.shape == want.shape
        assert relative_l2(got.cpu(), want) < tolerance
        no_bias = torch.from_dlpack(hfport.ops.patch_embed(x.to(DEVICE), w.to(DEVICE), None, patch))
        assert relative_l2((no_bias.float() + b.to(DEVICE)).cpu(), want.float()) < tolerance


@needs_cuda
def test_pixels_on_the_wrong_device_are_refused(tmp_path: Path) -> None:
    build(tmp_path, "dinov2")
    native = native_on_cuda(tmp_path / "dinov2")
    with pytest.raises(DeviceError, match=r"native dinov2 model: pixel_values is on cpu but the "
                       r"model is on cuda:0; move it there first"):
        native(pixels(1, 32, 32))


# ---------------------------------------------------------------- VideoMAE


def build_video_folder(tmp_path: Path, class_name: str,
                       **overrides: Any) -> tuple[Any, hfport.models.Model, Path]:
    """build_video's reference and CPU model, and the folder it saved them in."""
    before = set(tmp_path.iterdir())
    reference, on_cpu = build_video(tmp_path, class_name, **overrides)
    (folder,) = set(tmp_path.iterdir()) - before
    return reference, on_cpu, folder


def video_forward_on_cuda(native: hfport.models.Model, x: torch.Tensor,
                          **options: Any) -> dict[str, torch.Tensor]:
    return outputs(native.forward(pixel_values=x.to(DEVICE), output_hidden_states=True, **options))


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is visible here")
def test_videomae_on_cuda_without_a_device_says_why(tmp_path: Path) -> None:
    _, _, folder = build_video_folder(tmp_path, "VideoMAEModel")
    with pytest.raises(DeviceError, match="cuda:0"):
        native_on_cuda(folder)


@needs_cuda
@pytest.mark.parametrize("class_name", ["VideoMAEModel", "VideoMAEForVideoClassification"])
@pytest.mark.parametrize("mean_pooling", [True, False])
def test_videomae_matches_transformers_on_cuda(tmp_path: Path, class_name: str,
                                               mean_pooling: bool) -> None:
    labels = {"num_labels": 3} if "Classification" in class_name else {}
    reference, on_cpu, folder = build_video_folder(tmp_path, class_name,
                                                   use_mean_pooling=mean_pooling,
                                                   qkv_bias=mean_pooling, **labels)
    native = native_on_cuda(folder)
    assert native.family == "videomae"
    x = video(2)
    got = video_forward_on_cuda(native, x)
    assert len(got) > 3  # the embeddings, two blocks, and last_hidden_state or the logits
    assert_rows_match(got, reference_on_cuda(reference, x, False), F32_TOLERANCE)
    cpu = outputs(on_cpu.forward(pixel_values=x, output_hidden_states=True))
    assert_rows_match({k: v.cpu() for k, v in got.items()}, cpu, F32_TOLERANCE, on_gpu=False)


@needs_cuda
def test_videomae_mask_and_video_layouts_on_cuda(tmp_path: Path) -> None:
    reference, _, folder = build_video_folder(tmp_path, "VideoMAEModel")
    native = native_on_cuda(folder)
    masked = torch.zeros(2, 8, dtype=torch.bool)
    masked[0, [1, 2, 6]] = True
    masked[1, [0, 3, 7]] = True
    x = video(2)
    got = video_forward_on_cuda(native, x, bool_masked_pos=masked.to(DEVICE))
    assert tuple(got["last_hidden_state"].shape) == (2, 5, 32)
    want = reference_on_cuda(reference, x, False, bool_masked_pos=masked.to(DEVICE))
    assert_rows_match(got, want, F32_TOLERANCE)
    # A [batch, channels, frames, H, W] buffer seen in transformers' layout, and F64 frames: read
    # on the device as they are.
    plain = torch.from_dlpack(native(pixel_values=x.to(DEVICE)).last_hidden_state)
    strided = x.to(DEVICE).permute(0, 2, 1, 3, 4).contiguous().permute(0, 2, 1, 3, 4)
    assert not strided.is_contiguous()
    assert torch.equal(torch.from_dlpack(native(pixel_values=strided).last_hidden_state), plain)
    wide = torch.from_dlpack(native(pixel_values=x.double().to(DEVICE)).last_hidden_state)
    assert torch.equal(wide, plain)


@needs_cuda
def test_videos_on_the_wrong_device_are_refused(tmp_path: Path) -> None:
    _, _, folder = build_video_folder(tmp_path, "VideoMAEModel")
    native = native_on_cuda(folder)
    with pytest.raises(DeviceError, match=r"native videomae model: pixel_values is on cpu but the "
                       r"model is on cuda:0; move it there first"):
        native(pixel_values=video(1))


@needs_cuda
@pytest.mark.parametrize("class_name", ["VideoMAEModel", "VideoMAEForVideoClassification"])
def test_videomae_bf16_checkpoint_on_cuda(tmp_path: Path, class_name: str) -> None:
    labels = {"num_labels": 3} if "Classification" in class_name else {}
    reference, _, folder = build_video_folder(tmp_path, class_name, **labels)
    native = native_on_cuda(folder, dtype="bfloat16")
    x = video(2)
    got = video_forward_on_cuda(native, x.bfloat16())
    # Every row against transformers in f32 on the same bf16-rounded parameters and frames (the
    # sin-cos table is no parameter: f32 on both sides).
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.bfloat16().float())
    assert_rows_match(got, reference_on_cuda(reference, x.bfloat16().float(), False),
                      F32_TOLERANCE)
    # Against transformers in bf16 (the bound) on the last block's output, which both
    # heads return (the classifier's last_hidden_state is not in transformers' output); the
    # logits, a few numbers per video, are held to 1e-4 by the f32 check above.
    want = reference_on_cuda(reference, x, False, dtype=torch.bfloat16)
    last = f"hidden_states.{VIDEO['num_hidden_layers']}"
    assert relative_l2(got[last].cpu(), want[last].float().cpu()) < BF16_TOLERANCE


@needs_cuda
@pytest.mark.parametrize("case", sorted(OPENGVLAB_CASES))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_videomae_opengvlab_on_cuda(tmp_path: Path, case: str, dtype: str) -> None:
    on_cpu, reference, _, m = build_opengvlab(tmp_path, case)
    native = native_on_cuda(tmp_path / case, dtype=dtype)
    assert native.family == "videomae_opengvlab"
    x = opengvlab_video(2, m["num_frames"], m["img_size"])
    wide = x if dtype == "float32" else x.bfloat16()
    got = video_forward_on_cuda(native, wide)
    assert {"pooler_output", "hidden_states.2"} <= got.keys()
    # The CPU forward of the same load (f32 arithmetic on the same rounded weights): every row.
    if dtype != "float32":
        on_cpu = hfport.models.from_pretrained(tmp_path / case, dtype=dtype)
    cpu = outputs(on_cpu.forward(pixel_values=wide, output_hidden_states=True))
    assert_rows_match({k: v.cpu() for k, v in got.items()}, cpu, F32_TOLERANCE, on_gpu=False)
    # OpenGVLab's reference (transformers' blocks and its tail, f32 on the CPU): every row in f32;
    # the bf16 checkpoint's last_hidden_state within the bf16 bound.
    want = reference_outputs(reference(x))
    if dtype == "float32":
        assert_rows_match({k: v.cpu() for k, v in got.items()}, want, F32_TOLERANCE, on_gpu=False)
    else:
        assert relative_l2(got["last_hidden_state"].cpu(),
                           want["last_hidden_state"]) < BF16_TOLERANCE
