"""benchmarks/bench_gpu_attention.py: without a GPU it says why and exits 0 (writing nothing); on a
GPU its --small run checks hfport against SDPA's FA2 backend and prints one row per case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cuda_testing import HAS_CUDA, needs_cuda

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_gpu_attention.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=900, check=False)


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is here; the GPU run is tested instead")
def test_without_a_gpu_it_says_why_and_exits_0(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result = run("--write", str(docs))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing to measure" in result.stdout
    assert not docs.exists()


@needs_cuda
def test_small_run_on_a_gpu() -> None:
    result = run("--small")
    assert result.returncode == 0, result.stderr[-2000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| B")]
    assert len(table) == 3, result.stdout
    for line in table:
        ratio = line.split("|")[8].strip()
        assert ratio.endswith("x") and float(ratio[:-1]) > 0, line
