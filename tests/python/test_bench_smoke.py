"""Smoke test of benchmarks/bench_loader.py: the --small run finishes, prints every row with
sane figures, copies nothing, leaves no files behind and writes no docs; --write replaces only its
own section of the docs file."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_loader.py"
DOCS = REPO / "docs" / "benchmarks.md"

# Case cells start with these, in this order (sizes follow and depend on the mode).
ROW_PREFIXES = [
    "open + list tensors, ",
    "open + list tensors, ",
    "every tensor as torch, bf16 kept, ",
    "every tensor cast bf16 -> f32, ",
    "same cast vs memcpy moving its ",
    "context: same cast vs memcpy into fresh",
]


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of the printed markdown table, as lists of cells."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert len(lines) > 2, stdout
    assert lines[0].startswith("| case | hfport (ms) | reference (ms) | ratio"), lines[0]
    assert lines[1].startswith("| --- |"), lines[1]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_small_run_prints_every_row_and_writes_nothing(tmp_path: Path) -> None:
    docs_before = DOCS.read_bytes() if DOCS.exists() else None
    result = subprocess.run([sys.executable, str(SCRIPT), "--small", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert len(rows) == len(ROW_PREFIXES), result.stdout
    for row, prefix in zip(rows, ROW_PREFIXES):
        case, hf_ms, ref_ms, ratio, target, met = row
        assert case.startswith(prefix), case
        assert float(hf_ms) > 0 and float(ref_ms) > 0, row
        assert ratio.endswith("x") and abs(float(ratio[:-1]) - float(ref_ms) / float(hf_ms)) < 0.01
        assert target and met in (("-",) if case.startswith("context:") else ("yes", "**no**")), row
    assert "(hfport copies 0 B)" in rows[2][0], "hfport's tensors must lie in its mapping"
    assert "Machine: " in result.stdout and "Threads: torch " in result.stdout
    assert list(tmp_path.iterdir()) == [], "the temporary checkpoints must be deleted"
    assert (DOCS.read_bytes() if DOCS.exists() else None) == docs_before


def test_write_section_replaces_only_its_markers(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_loader", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_loader", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    doc = tmp_path / "benchmarks.md"
    bench.write_section(doc, "first\n")
    assert doc.read_text().startswith("# hfport benchmarks")
    other = "<!-- bench_kernels:begin -->\nkernels\n<!-- bench_kernels:end -->\n"
    doc.write_text(doc.read_text() + "\n" + other)
    bench.write_section(doc, "second\n")
    text = doc.read_text()
    assert "second\n" in text and "first" not in text and other in text
    assert len(re.findall(re.escape(bench.BEGIN_MARKER), text)) == 1
