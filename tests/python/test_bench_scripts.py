"""The mapping, kernel and model benchmarks run in their --small mode: every row is printed with
a ratio, the outputs they compare agree (each script checks before timing), no file is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("script", "rows"), [
    ("bench_mapping.py", 4),
    ("bench_kernels.py", 7),
    ("bench_models.py", 2),
    ("bench_vision.py", 3),
    ("bench_blas.py", 2),
    ("bench_overhead.py", 4),
    ("bench_recurrent.py", 4),
    ("bench_audio.py", 7),
])
def test_small_run_prints_every_row(script: str, rows: int) -> None:
    docs = REPO / "docs" / "benchmarks.md"
    before = docs.read_bytes()
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--small"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    # The first table holds the timed rows; a script may print more tables after it.
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("| ")), len(lines))
    table = lines[start + 2:end]
    assert len(table) == rows, result.stdout
    for line in table:
        ratio = line.split("|")[4].strip()
        assert ratio.endswith("x") and float(ratio[:-1]) > 0, line
    assert docs.read_bytes() == before
