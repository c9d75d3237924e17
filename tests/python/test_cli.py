"""`hfport inspect` and `hfport demo` on the real MiniLM checkpoint and on crafted files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import hfport
import pytest
import torch
from hfport.cli import demo_checkpoint_dir, main
from safetensors import safe_open
from safetensors.torch import save_file

MINILM = demo_checkpoint_dir()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hfport.cli", *args], check=False,
                          capture_output=True, text=True, timeout=120)


def test_inspect_json_matches_safetensors_on_minilm() -> None:
    result = run_cli("inspect", str(MINILM), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with safe_open(str(MINILM / "model.safetensors"), "pt") as f:
        names = set(f.keys())
        expected_shapes = {n: list(f.get_slice(n).get_shape()) for n in names}
        expected_dtypes = {n: f.get_slice(n).get_dtype() for n in names}
    assert {row["name"] for row in report["tensors"]} == names
    for row in report["tensors"]:
        assert row["shape"] == expected_shapes[row["name"]]
        assert row["dtype"] == expected_dtypes[row["name"]]
        itemsize = {"F32": 4, "I64": 8}[row["dtype"]]  # MiniLM holds float32 and int64 ids
        assert row["nbytes"] == math.prod(row["shape"]) * itemsize
        assert row["shard"] == "model.safetensors"
    config = json.loads((MINILM / "config.json").read_text())
    assert report["config"]["model_type"] == config["model_type"] == "bert"
    assert report["config"]["hidden_size"] == config["hidden_size"]
    assert report["totals"]["tensors"] == len(names)
    assert report["totals"]["parameters"] == sum(math.prod(s) for s in expected_shapes.values())


def test_inspect_stats_match_torch(tmp_path: Path) -> None:
    weights = {
        "a": torch.randn(33, 17) * 3 + 1,
        "b": torch.randn(1000).to(torch.bfloat16),
        "c": torch.tensor([1.0, float("nan"), float("inf"), -2.0, float("-inf")]),
    }
    path = tmp_path / "w.safetensors"
    save_file(weights, str(path))
    result = run_cli("inspect", str(path), "--stats", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row["stats"] for row in json.loads(result.stdout)["tensors"]}
    for name in ("a", "b"):
        ref = weights[name].double()
        assert rows[name]["mean"] == pytest.approx(ref.mean().item(), rel=1e-9, abs=1e-12)
        assert rows[name]["std"] == pytest.approx(ref.std().item(), rel=1e-9)
        assert rows[name]["min"] == ref.min().item()
        assert rows[name]["max"] == ref.max().item()
        assert rows[name]["nan"] == rows[name]["inf"] == 0
    finite = torch.tensor([1.0, -2.0], dtype=torch.float64)
    assert rows["c"]["nan"] == 1 and rows["c"]["inf"] == 2
    assert rows["c"]["mean"] == pytest.approx(finite.mean().item())
    assert rows["c"]["std"] == pytest.approx(finite.std().item())
    assert (rows["c"]["min"], rows["c"]["max"]) == (-2.0, 1.0)


def test_inspect_table_names_every_tensor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(MINILM)]) == 0
    out = capsys.readouterr().out
    assert "encoder.layer.5.output.dense.weight" in out
    assert "config.model_type" in out and "bert" in out


def test_inspect_reports_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    result = run_cli("inspect", str(bad))
    assert result.returncode == 1
    assert "HeaderTooLargeError" in result.stderr and "bad.safetensors" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_prints_the_minilm_load_report() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "all-MiniLM-L6-v2" in result.stdout
    assert "family bert" in result.stdout and "79 loaded" in result.stdout
    assert "tok_embd.weight" in result.stdout and "[30522, 384]" in result.stdout


def test_native_and_package_versions_agree() -> None:
    from importlib.metadata import version

    import hfport

    assert hfport.__version__ == version("hfport")


def test_version_and_python_dash_m() -> None:
    """`python -m hfport` is the hfport command; --version names the version and the build."""
    result = subprocess.run([sys.executable, "-m", "hfport", "--version"], check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(f"hfport {hfport.__version__} (") and "\n" not in line
    assert ("CUDA compiled in" in line) == hfport.built_with_cuda()
    result = subprocess.run([sys.executable, "-m", "hfport", "inspect", str(MINILM), "--json"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "embeddings.word_embeddings.weight" in result.stdout
