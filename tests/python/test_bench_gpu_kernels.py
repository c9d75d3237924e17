"""benchmarks/bench_gpu_kernels.py: without a GPU it says why, exits 0 and writes nothing; with one
its --small run prints every row with a ratio and a share of copy bandwidth (the script checks
hfport against each reference before timing it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cuda_testing import HAS_CUDA

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_gpu_kernels.py"
DOCS = REPO / "docs" / "benchmarks.md"


def test_small_run_prints_every_row_or_says_why_not() -> None:
    before = DOCS.read_bytes()
    result = subprocess.run([sys.executable, str(SCRIPT), "--small"], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert DOCS.read_bytes() == before
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")][2:]
    if not HAS_CUDA:
        assert "no GPU to measure on (" in result.stdout, result.stdout
        assert table == []
        return
    assert len(table) == 3, result.stdout
    for line in table:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        ratio, share = cells[3], cells[6]
        assert ratio.endswith("x") and float(ratio[:-1]) > 0, line
        assert share.endswith("%") and float(share[:-1]) > 0, line
