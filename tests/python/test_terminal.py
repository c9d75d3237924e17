"""Every CLI command rendered at 80 and 100 columns (COLUMNS, as a terminal of that width): no line
wider than the terminal, no number cut ("…"), every tensor name readable whole (folded only after
a dot or inside an over-long segment, so joining a name's lines gives it back), every statistic
printed as the JSON form's value formats it. Plus the folding rules themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hfport.cli import demo_checkpoint_dir
from hfport.demo import build_tiny_llama
from hfport.inspect import _fmt
from hfport.terminal import fold_name, wrap_line
from safetensors.torch import load_file, save_file

MINILM = demo_checkpoint_dir()
WIDTHS = (80, 100)


def run_at(width: int, *args: str) -> str:
    env = {**os.environ, "COLUMNS": str(width)}
    result = subprocess.run([sys.executable, "-m", "hfport", *args], check=False, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def check_fits(text: str, width: int) -> str:
    """Asserts the layout rules; returns the text with every line's indentation removed and the
    lines joined, in which a folded name reads whole again."""
    lines = text.splitlines()
    assert lines
    for line in lines:
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
        assert "…" not in line, line
    return "".join(line.strip() for line in lines)


def test_wrap_line_breaks_at_spaces_then_dots_and_never_loses_text() -> None:
    name = "encoder.layer.11.attention.self.query.weight"
    folded = fold_name(name, 20).split("\n")
    assert folded == ["encoder.layer.11.", "attention.self.", "query.weight"]
    assert "".join(folded) == name
    assert fold_name("a" * 30, 8).split("\n") == ["a" * 8] * 3 + ["a" * 6]  # no dot: cut
    line = "  blk.0.attn_qkv.weight  concat [1152, 384] F32  <- a.b.query, a.b.key, a.b.value"
    wrapped = wrap_line(line, 40)
    assert all(len(part) <= 40 for part in wrapped) and len(wrapped) > 1
    assert "".join(part.strip() for part in wrapped).replace(" ", "") == line.replace(" ", "")
    assert wrap_line("short", 80) == ["short"]


@pytest.mark.parametrize("width", WIDTHS)
def test_inspect_with_stats(width: int) -> None:
    report = json.loads(run_at(width, "inspect", str(MINILM), "--stats", "--json"))
    joined = check_fits(run_at(width, "inspect", str(MINILM), "--stats"), width)
    for row in report["tensors"]:
        assert row["name"] in joined
        for key in ("mean", "std", "min", "max"):
            assert _fmt(row["stats"][key]) in joined, (row["name"], key)


def unfolded(*args: str) -> str:
    """What a command prints into a pipe (no COLUMNS): nothing folded."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "hfport", *args], check=False, env=env,
                          capture_output=True, text=True, timeout=300).stdout


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("width", WIDTHS)
def test_map_and_convert_lose_nothing_in_wrapping(width: int, tmp_path: Path) -> None:
    """The load report wrapped to the width is the unwrapped one, whitespace aside."""
    check_fits(folded := run_at(width, "map", str(MINILM)), width)
    assert squeezed(folded) == squeezed(unfolded("map", str(MINILM)))
    out = run_at(width, "convert", str(MINILM), str(tmp_path / "out"))
    check_fits(out, width)
    again = unfolded("convert", str(MINILM), str(tmp_path / "again"))
    assert squeezed(out).replace("/out", "/again") == squeezed(again)


@pytest.mark.parametrize("width", WIDTHS)
def test_diff_names_stay_distinct(width: int, tmp_path: Path) -> None:
    """Two long names that differ only at their end, both changed: both readable."""
    tensors = load_file(str(MINILM / "model.safetensors"))
    edited = dict(tensors)
    changed = ["encoder.layer.3.attention.output.LayerNorm.weight",
               "encoder.layer.3.attention.output.LayerNorm.bias"]
    for name in changed:
        edited[name] = tensors[name] * 1.5
    save_file(edited, str(tmp_path / "b.safetensors"))
    out = run_at(width, "diff", str(MINILM / "model.safetensors"), str(tmp_path / "b.safetensors"))
    joined = check_fits(out, width)
    for name in changed:
        assert name in joined


@pytest.mark.parametrize("width", WIDTHS)
def test_parity_table(width: int, tmp_path: Path) -> None:
    folder = build_tiny_llama(tmp_path / "llama", seed=3)
    report = json.loads(run_at(width, "parity", str(folder), "--seq", "4", "--json"))
    joined = check_fits(run_at(width, "parity", str(folder), "--seq", "4"), width)
    for row in report["rows"]:
        assert row["name"] in joined and f"{row['rel_l2']:.3e}" in joined


def test_a_pipe_keeps_one_line_per_entry() -> None:
    """Without COLUMNS and without a terminal nothing is folded: a redirected report greps."""
    out = unfolded("map", str(MINILM))
    assert any(line.strip().startswith("blk.{0..5}.attn_qkv.weight") and
               "encoder.layer.{0..5}.attention.self.value.weight" in line
               for line in out.splitlines())
