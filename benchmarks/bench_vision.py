"""Native vision encoder benchmark (CPU, float32): hfport's forward against transformers' on the
same checkpoint and pixels (issue 15's performance rows).

- ViT-B/16-shaped: hidden 768, 12 layers, 12 heads, intermediate 3072, 224x224 images of 16x16
  patches (197 tokens), batch 1 and batch 8; `ViTModel` (pooler included).
- DINOv2-S/14-shaped: hidden 384, 12 layers, 6 heads, MLP ratio 4, 224x224 images of 14x14
  patches (257 tokens), batch 8; `Dinov2Model`.

transformers runs with eager attention (`attn_implementation="eager"`, the reference hfport's
parity tests use), under `torch.no_grad()`. Random weights (fixed seed) saved with
save_pretrained into a temporary folder; each case checks that last_hidden_state agrees (relative
L2 < 1e-4) before timing; both sides on the same thread count, timed in blocks (hfport's calls,
then transformers') after a warm-up, median of the repeats. The load average before and after the
run goes into the table's notes: other processes on the cores slow both sides, not always alike.

    python benchmarks/bench_vision.py                          # print the table
    python benchmarks/bench_vision.py --write docs/benchmarks.md
    python benchmarks/bench_vision.py --small                  # tiny models, seconds (tests)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hfport
import torch
import transformers
from bench_kernels import median_pair  # block timing, shared with the kernel table
from bench_loader import (  # shared by all
    machine_line,
    main_with_workdir,
)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

VIT_B16 = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, image_size=224, patch_size=16)
DINOV2_S14 = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                  image_size=224, patch_size=14)
SMALL_VIT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, image_size=32, patch_size=8)
SMALL_DINOV2 = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=28,
                    patch_size=7)


def build(folder: Path, model_cls: Any, config: Any) -> Any:
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = model_cls(config).eval()
    model.save_pretrained(folder)
    return model


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}" if seconds >= 0.1 else f"{seconds * 1e3:.2f}"


def case(folder: Path, label: str, hf_model: Any, batch: int, repeats: int) -> str:
    native = hfport.models.from_pretrained(folder)
    size = hf_model.config.image_size
    pixels = torch.randn((batch, 3, size, size), generator=torch.Generator().manual_seed(1))

    def ours() -> Any:
        return native.forward(pixel_values=pixels)["last_hidden_state"]

    @torch.no_grad()
    def theirs() -> torch.Tensor:
        return hf_model(pixel_values=pixels).last_hidden_state

    got, want = torch.from_dlpack(ours()), theirs()
    error = ((got.double() - want.double()).norm() / want.double().norm()).item()
    if not error < 1e-4:
        raise AssertionError(f"{label}: native and transformers outputs differ (rel. L2 "
                             f"{error:.2e})")
    t_ours, t_theirs = median_pair(ours, theirs, repeats, rounds=1)
    ratio = t_theirs / t_ours
    met = "yes" if ratio >= 1.2 else "**no**"
    return (f"| {label} | {milliseconds(t_ours)} | {milliseconds(t_theirs)} | {ratio:.2f}x | "
            f">= 1.2x | {met} | {error:.1e} |")


def run(workdir: Path, small: bool, repeats: int) -> str:
    load_before = os.getloadavg()[0]
    rows = []
    vit_cfg = transformers.ViTConfig(**(SMALL_VIT if small else VIT_B16))
    vit = build(workdir / "vit", transformers.ViTModel, vit_cfg)
    shape = (f"hidden {vit_cfg.hidden_size}, {vit_cfg.num_hidden_layers} layers, "
             f"{vit_cfg.image_size}x{vit_cfg.image_size} / {vit_cfg.patch_size}")
    name = "ViT-B/16-shaped" if not small else "ViT-shaped (small)"
    for batch in (1, 8):
        rows.append(case(workdir / "vit", f"{name} forward, {shape}, batch {batch}", vit, batch,
                         repeats))
    del vit
    dino_cfg = transformers.Dinov2Config(**(SMALL_DINOV2 if small else DINOV2_S14))
    dino = build(workdir / "dinov2", transformers.Dinov2Model, dino_cfg)
    shape = (f"hidden {dino_cfg.hidden_size}, {dino_cfg.num_hidden_layers} layers, "
             f"{dino_cfg.image_size}x{dino_cfg.image_size} / {dino_cfg.patch_size}")
    name = "DINOv2-S/14-shaped" if not small else "DINOv2-shaped (small)"
    rows.append(case(workdir / "dinov2", f"{name} forward, {shape}, batch 8", dino, 8, repeats))
    load_after = os.getloadavg()[0]
    lines = [
        "## Native vision encoders (CPU, float32)",
        "",
        machine_line(),
        (f"Load average (1 min) before the run {load_before:.2f}, after it {load_after:.2f}; the "
         f"run adds up to {os.cpu_count()} itself. Random weights; median of {repeats} "
         f"back-to-back calls after a warm-up call, hfport's block then transformers'; the same "
         f"thread count on both sides. Command: "
         f"`python benchmarks/bench_vision.py{' --small' if small else ''}`."),
        "",
        ("| model | hfport (ms) | transformers (ms) | ratio (>1: hfport faster) | target | met? | "
         "last_hidden_state rel. L2 |"),
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
        *rows,
        "",
        ("Reference: `ViTModel` / `Dinov2Model` forward with `attn_implementation=\"eager\"` "
         "under `torch.no_grad()`, random pixels of the config's image size; both sides compute "
         "last_hidden_state (and ViT's pooler). The 1.2x target is issue 15's."),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return main_with_workdir(argv, __doc__, "bench_vision", run, (2, 5))

if __name__ == "__main__":
    sys.exit(main())
