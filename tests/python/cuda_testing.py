"""What the CUDA tests share: the skip marker (with the reason: no CUDA build, no device for hfport,
or no CUDA torch), poisoned outputs, and the error measure BENCHMARKS.md fixes.

Every CUDA test runs on a machine with a GPU and skips elsewhere, saying which of the three is
missing. A test compares the CUDA op with the CPU op (the reference the CPU tests already pin
against float64) and, where torch has the same computation on CUDA, with torch.
"""

from __future__ import annotations

import hfport
import pytest
import torch

HAS_CUDA = (
    hfport.built_with_cuda() and hfport.cuda_device_count() > 0 and torch.cuda.is_available()
)
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA,
    reason=(
        f"needs CUDA: hfport built with CUDA: {hfport.built_with_cuda()}, devices hfport sees: "
        f"{hfport.cuda_device_count()}, torch.cuda.is_available(): {torch.cuda.is_available()}"
    ),
)

# BENCHMARKS.md: relative L2 error under 1e-5 for float32, 1e-2 for bf16 (f16 is tighter than bf16).
TOLERANCE = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 1e-2}


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual = actual.double().cpu()
    expected = expected.double().cpu()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-30))


def poisoned(shape, dtype: torch.dtype, device: str = "cuda") -> torch.Tensor:
    """An output buffer full of NaN, so that an element a kernel forgets to write shows."""
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def randn(*shape, dtype: torch.dtype = torch.float32, device: str = "cuda", generator=None):
    """Fresh random inputs (never zeros), drawn on the CPU so a CPU run sees the same values."""
    return torch.randn(*shape, generator=generator, dtype=torch.float32).to(dtype).to(device)
