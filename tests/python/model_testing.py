"""Shared by the native-model tests: the error measure, and redrawing a transformers model's
parameters away from their initial values (norm weights of exactly 1 and zero biases would hide a
norm or a bias the native model forgot)."""

from __future__ import annotations

import math
import re

import torch


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


def redraw(model: torch.nn.Module, seed: int) -> None:
    """Matrices ~ N(0, 1/in); norm weights (and Mamba's D) around 1; biases ~ N(0, 0.2^2); Mamba's
    A_log and dt bias (dt_proj.bias, Mamba-2's dt_bias) keep their initial scale (a stable
    recurrence) with noise added; GPT-2's learned positions ~ N(0, 4), strong enough that a random
    GPT-2 does not settle on one token. RWKV: its layer norms (pre_ln, ln1, ln2) count as norms,
    the time-mix interpolations are uniform in [0, 1], time_decay ~ N(-1, 1) (per-step decays
    exp(-exp(w)) spread over 0.1 .. 0.95), time_first ~ N(0, 0.5^2)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            is_norm = ("norm" in name.lower() or "ln_" in name or name.endswith(".D")
                       or re.search(r"(^|\.)(pre_ln|ln\d)\.", name) is not None)
            if name.endswith(("A_log", "dt_proj.bias", "dt_bias")):
                p.add_(0.2 * noise)
            elif is_norm and not name.endswith("bias"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            elif name.endswith("wpe.weight"):
                p.copy_(2.0 * noise)
            elif ".time_mix_" in name:
                p.copy_(torch.rand(p.shape, generator=generator))
            elif name.endswith("time_decay"):
                p.copy_(noise - 1.0)
            elif name.endswith("time_first"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise / math.sqrt(p.shape[-1]))
