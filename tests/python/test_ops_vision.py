"""hfport.ops.patch_embed against torch's conv2d, and hfport.ops.interpolate_bicubic against
torch.nn.functional.interpolate(mode="bicubic", align_corners=False), antialias off and on.

interpolate_bicubic reproduces the arithmetic of torch's CPU kernel as its source writes it, so it
must give the same floats as torch's portable build of that kernel: torch runs it when
ATEN_CPU_CAPABILITY=default, which a child process sets (the capability is chosen at start-up).
torch's AVX2 / AVX-512 builds of the same source let the compiler fuse some multiply-adds, so on
such a machine the two differ in the last bits: within 1e-5 * max|x|, measured at under 4e-6 on
random sizes. One torch quirk is left out: its antialiased resize returns the first output row for
every row when the output is one column wide (torch 2.13), which hfport does not copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import hfport
import pytest
import torch
import torch.nn.functional as F
from hfport.errors import ArgumentError

# (in_h, in_w, out_h, out_w): growing, shrinking, oblong, one row, unchanged, the ViT-B/16 grid
# to 24x20 and DINOv2-S/14's 37x37 to 16x16.
RESIZES = [(4, 4, 6, 5), (4, 4, 2, 3), (7, 7, 20, 13), (16, 16, 37, 11), (3, 5, 1, 9),
           (14, 14, 16, 16), (37, 37, 16, 16), (14, 14, 24, 20), (5, 5, 5, 4), (6, 6, 6, 6),
           (31, 25, 27, 13), (9, 37, 9, 33)]

EXACT_CHECK = textwrap.dedent("""
    import random, sys
    import hfport, torch
    import torch.nn.functional as F
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    sizes = [tuple(int(v) for v in s.split("x")) for s in sys.argv[1].split(",")]
    rng = random.Random(0)
    for _ in range(150):
        sizes.append(tuple(rng.randint(1, 40) for _ in range(4)))
    torch.manual_seed(0)
    checked = 0
    for antialias in (False, True):
        for h, w, oh, ow in sizes:
            if antialias and ow == 1:
                continue  # torch's one-column antialiased quirk (see the module docstring)
            x = torch.randn(2, 5, h, w) * rng.choice([0.01, 1.0, 30.0])
            want = F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False,
                                 antialias=antialias)
            got = torch.from_dlpack(hfport.ops.interpolate_bicubic(x, (oh, ow), antialias))
            if not torch.equal(got, want):
                print(f"antialias={antialias} {h}x{w}->{oh}x{ow}: "
                      f"{(got != want).sum().item()} values differ")
                sys.exit(1)
            checked += 1
    print(f"{checked} resizes bit for bit")
""")


def test_interpolate_bicubic_is_torch_bit_for_bit() -> None:
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    sizes = ",".join("x".join(str(v) for v in s) for s in RESIZES)
    result = subprocess.run([sys.executable, "-c", EXACT_CHECK, sizes], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "bit for bit" in result.stdout


@pytest.mark.parametrize("antialias", [False, True])
def test_interpolate_bicubic_within_the_stated_tolerance_of_this_torch(antialias: bool) -> None:
    torch.manual_seed(1)
    for h, w, oh, ow in RESIZES:
        x = torch.randn(1, 8, h, w)
        want = F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False,
                             antialias=antialias)
        got = torch.from_dlpack(hfport.ops.interpolate_bicubic(x, (oh, ow), antialias))
        assert got.shape == want.shape
        assert (got - want).abs().max().item() <= 1e-5 * x.abs().max().item(), (h, w, oh, ow)


def test_interpolate_bicubic_reads_a_channels_last_view_and_an_int_size() -> None:
    table = torch.randn(1, 7, 7, 12)  # [1, grid, grid, hidden], as a position table lies
    x = table.permute(0, 3, 1, 2)
    assert not x.is_contiguous()
    got = torch.from_dlpack(hfport.ops.interpolate_bicubic(x, 9))
    want = torch.from_dlpack(hfport.ops.interpolate_bicubic(x.contiguous(), (9, 9)))
    assert got.is_contiguous() and got.shape == (1, 12, 9, 9)
    assert torch.equal(got, want)


def test_interpolate_bicubic_errors() -> None:
    x = torch.randn(1, 2, 4, 4)
    with pytest.raises(ArgumentError, match=r"x must have dtype F32 .* got BF16"):
        hfport.ops.interpolate_bicubic(x.bfloat16(), (5, 5))
    with pytest.raises(ArgumentError, match=r"size must be an int or a pair of ints, got \(5, 5, 5\)"):
        hfport.ops.interpolate_bicubic(x, (5, 5, 5))
    with pytest.raises(ArgumentError, match=r"size must be >= 1 in both dimensions, got \(5, 0\)"):
        hfport.ops.interpolate_bicubic(x, (5, 0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_patch_embed_is_a_strided_conv2d(dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2
    for batch, channels, height, width, patch, hidden in (
            (2, 3, 32, 32, 8, 32), (1, 3, 35, 41, 8, 16), (3, 1, 14, 28, 7, 5),
            (1, 3, 224, 224, 16, 24), (2, 2, 12, 10, (4, 5), 9)):
        x = torch.randn(batch, channels, height, width).to(dtype)
        size = patch if isinstance(patch, tuple) else (patch, patch)
        weight = torch.randn(hidden, channels, *size) * 0.2
        bias = torch.randn(hidden)
        want = F.conv2d(x.float(), weight, bias, stride=size).flatten(2).transpose(1, 2)
        got = torch.from_dlpack(hfport.ops.patch_embed(x, weight, bias, patch))
        assert got.dtype == dtype
        assert got.shape == want.shape
        error = ((got.double() - want.double()).norm() / want.double().norm()).item()
        assert error < tolerance, (batch, channels, height, width, patch)


def test_patch_embed_channels_last_no_bias_and_out() -> None:
    x = torch.randn(2, 3, 24, 16).to(memory_format=torch.channels_last)
    weight = torch.randn(10, 3, 8, 8)
    want = F.conv2d(x, weight, stride=8).flatten(2).transpose(1, 2)
    out = torch.full((2, 6, 10), float("nan"))
    result = hfport.ops.patch_embed(x, weight, None, 8, out=out)
    assert torch.equal(torch.from_dlpack(result), out)
    assert torch.allclose(out, want, rtol=1e-5, atol=1e-5)


def test_patch_embed_errors_name_the_expected_shape() -> None:
    weight = torch.randn(8, 3, 8, 8)
    with pytest.raises(ArgumentError, match=r"pixels must be \[batch, channels, height, width\] "
                       r"with the weight's 3 channels, got \[1, 4, 16, 16\]"):
        hfport.ops.patch_embed(torch.randn(1, 4, 16, 16), weight, None, 8)
    with pytest.raises(ArgumentError, match=r"pixels must hold at least one patch \(8x8\), got "
                       r"\[1, 3, 4, 16\]"):
        hfport.ops.patch_embed(torch.randn(1, 3, 4, 16), weight, None, 8)
    with pytest.raises(ArgumentError, match=r"weight must be \[hidden, channels, patch_h, "
                       r"patch_w\] = \[8, 3, 4, 4\], got \[8, 3, 8, 8\]"):
        hfport.ops.patch_embed(torch.randn(1, 3, 16, 16), weight, None, 4)
    with pytest.raises(ArgumentError, match=r"bias must be \[hidden\] = \[8\], got \[3\]"):
        hfport.ops.patch_embed(torch.randn(1, 3, 16, 16), weight, torch.randn(3), 8)
    with pytest.raises(ArgumentError, match=r"patch must be an int, \(patch_h, patch_w\) or "
                       r"\(patch_t, patch_h, patch_w\)"):
        hfport.ops.patch_embed(torch.randn(1, 3, 16, 16), weight, None, "8")


def test_patch_embed_over_tubelets_is_a_strided_conv3d() -> None:
    torch.manual_seed(3)
    video = torch.randn(2, 5, 3, 16, 20)  # [batch, frames, channels, H, W], transformers' layout
    x = video.permute(0, 2, 1, 3, 4)        # NCTHW view, no copy
    weight = torch.randn(12, 3, 2, 8, 8) * 0.2
    bias = torch.randn(12)
    want = F.conv3d(x, weight, bias, stride=(2, 8, 8)).flatten(2).transpose(1, 2)
    got = torch.from_dlpack(hfport.ops.patch_embed(x, weight, bias, (2, 8, 8)))
    assert got.shape == want.shape == (2, 2 * 2 * 2, 12)
    assert ((got - want).norm() / want.norm()).item() < 1e-6
