"""hfport.parity: the per-layer comparison, `hfport parity` and `hfport demo`.

The harness is checked twice: against a stand-in that runs a (possibly perturbed) transformers
model, where the right answer is known row by row, and on the native models themselves, where a
checkpoint with two layers swapped must be reported at the first swapped layer.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from hfport import models
from hfport.cli import main
from hfport.demo import build_tiny_llama
from hfport.errors import ArgumentError
from hfport.parity import compare, random_input_ids, reference_model
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM


class TransformersAsNative:
    """A stand-in with the native model's forward contract, computed by a transformers model."""

    def __init__(self, model: torch.nn.Module, padding: torch.Tensor | None = None) -> None:
        self.model = model
        self.padding = padding  # a mask: its 0 positions get garbage in every output

    def forward(self, ids: Any, mask: Any, *, output_hidden_states: bool) -> dict[str, Any]:
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = [h.clone() for h in out.hidden_states]
        result = {"logits": out.logits.clone(), "hidden_states": hidden}
        if self.padding is not None:
            for t in [result["logits"], *hidden]:
                t[self.padding == 0] = 1e6
        return result


@pytest.fixture(scope="module")
def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2,
                         attn_implementation="eager")
    return LlamaForCausalLM(config).eval()


def test_identical_models_match_exactly(tiny_llama: LlamaForCausalLM) -> None:
    ids = random_input_ids(97, 2, 7, seed=3)
    report = compare(TransformersAsNative(tiny_llama), tiny_llama, ids)
    names = [row.name for row in report.rows]
    assert names == ["embeddings", "layers.0", "layers.1", "layers.2", "layers.3 + norm", "logits"]
    assert report.ok and report.first_divergent is None
    for row in report.rows:
        assert row.max_abs == 0.0 and row.rel_l2 == 0.0
        assert row.cosine == pytest.approx(1.0, abs=1e-12)
    assert report["logits"].shape == (2, 7, 97)
    assert report.rtol == 1e-5 and report.dtype == "float32"


def test_a_perturbed_layer_is_the_first_divergent(tiny_llama: LlamaForCausalLM) -> None:
    broken = copy.deepcopy(tiny_llama)
    with torch.no_grad():
        broken.model.layers[2].mlp.down_proj.weight[0, 0] += 0.05
    ids = random_input_ids(97, 2, 9, seed=4)
    report = compare(TransformersAsNative(broken), tiny_llama, ids)
    assert not report.ok
    assert report.first_divergent == "layers.2"
    assert [row.ok for row in report.rows] == [True, True, True, False, False, False]

    # The row's numbers are the definitions, recomputed here in float64.
    with torch.no_grad():
        a = broken(ids, output_hidden_states=True).hidden_states[3].double()
        b = tiny_llama(ids, output_hidden_states=True).hidden_states[3].double()
    row = report["layers.2"]
    assert row.max_abs == pytest.approx((a - b).abs().max().item(), rel=1e-12)
    assert row.rel_l2 == pytest.approx(((a - b).norm() / b.norm()).item(), rel=1e-12)
    cosine = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
    assert row.cosine == pytest.approx(cosine, rel=1e-9)
    assert row.status == "over"

    text = str(report)
    assert "first divergent: layers.2" in text
    data = json.loads(report.to_json())
    assert data["first_divergent"] == "layers.2" and data["ok"] is False
    assert [r["name"] for r in data["rows"]] == [r.name for r in report.rows]


def test_atol_and_rtol_bound_the_rows(tiny_llama: LlamaForCausalLM) -> None:
    broken = copy.deepcopy(tiny_llama)
    with torch.no_grad():
        broken.lm_head.weight.mul_(1 + 1e-4)  # logits off by a relative 1e-4, nothing else
    ids = random_input_ids(97, 1, 5, seed=5)
    assert compare(TransformersAsNative(broken), tiny_llama, ids).first_divergent == "logits"
    assert compare(TransformersAsNative(broken), tiny_llama, ids, rtol=1e-3).ok
    report = compare(TransformersAsNative(broken), tiny_llama, ids, rtol=1e-3, atol=1e-9)
    assert report.first_divergent == "logits"


def test_padding_positions_are_not_compared(tiny_llama: LlamaForCausalLM) -> None:
    ids = random_input_ids(97, 2, 6, seed=6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    noisy = TransformersAsNative(tiny_llama, padding=mask)
    assert compare(noisy, tiny_llama, ids, attention_mask=mask).ok
    # The reference's own padded positions differ too once it sees the mask, so without the
    # mask the garbage rows count.
    assert compare(noisy, tiny_llama, ids).first_divergent == "embeddings"


def test_missing_layers_and_shapes_are_reported(tiny_llama: LlamaForCausalLM) -> None:
    ids = random_input_ids(97, 1, 4, seed=7)

    class DropsALayer(TransformersAsNative):
        def forward(self, ids: Any, mask: Any, *, output_hidden_states: bool) -> dict[str, Any]:
            out = super().forward(ids, mask, output_hidden_states=output_hidden_states)
            out["hidden_states"] = out["hidden_states"][:-1]
            out["logits"] = out["logits"][..., :-1]
            return out

    report = compare(DropsALayer(tiny_llama), tiny_llama, ids)
    assert report["layers.3 + norm"].status == "reference only"
    assert report["logits"].status == "shape" and report["logits"].shape == (1, 4, 96)
    assert report.first_divergent == "layers.3 + norm"
    assert math.isnan(report["logits"].rel_l2)
    json.loads(report.to_json())  # NaN rows still serialise


def test_rich_table_names_every_row(tiny_llama: LlamaForCausalLM) -> None:
    from rich.console import Console

    console = Console(width=120, record=True)
    ids = random_input_ids(97, 1, 3, seed=8)
    console.print(compare(TransformersAsNative(tiny_llama), tiny_llama, ids, title="tiny"))
    text = console.export_text()
    assert "parity tiny" in text and "layers.3 + norm" in text and "within tolerance" in text


# ---- the native models ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("llama"), seed=2)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    config = BertConfig(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=64)
    folder = tmp_path_factory.mktemp("bert")
    BertModel(config).save_pretrained(folder)
    return folder


def test_native_llama_matches_transformers(llama_dir: Path) -> None:
    model = models.from_pretrained(llama_dir)
    reference = reference_model(llama_dir, model.family)
    ids = random_input_ids(256, 2, 11, seed=0)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding, as batched generation pads
    for attention_mask in (None, mask):
        report = compare(model, reference, ids, attention_mask=attention_mask)
        assert report.ok, str(report)
        assert len(report.rows) == 1 + 3 + 1


def test_native_bert_matches_transformers(bert_dir: Path) -> None:
    model = models.from_pretrained(bert_dir)
    reference = reference_model(bert_dir, model.family)
    ids = random_input_ids(120, 2, 10, seed=1)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0  # right padding, as tokenizers pad sentences
    for attention_mask in (None, mask):
        report = compare(model, reference, ids, attention_mask=attention_mask)
        assert report.ok, str(report)
        assert [r.name for r in report.rows][-2:] == ["last_hidden_state", "pooler_output"]
        assert report["pooler_output"].shape == (2, 48)


def test_swapped_layers_are_caught_at_the_first_swap(llama_dir: Path, tmp_path: Path) -> None:
    """A checkpoint whose layers 1 and 2 trade places loads cleanly (same names, same shapes):
    only the forward pass can tell, and parity names layer 1."""
    state = load_file(str(llama_dir / "model.safetensors"))
    swapped = {}
    for name, tensor in state.items():
        for a, b in ((".layers.1.", ".layers.2."), (".layers.2.", ".layers.1.")):
            if a in name:
                name = name.replace(a, b)
                break
        swapped[name] = tensor
    save_file(swapped, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(llama_dir / "config.json", tmp_path / "config.json")

    model = models.from_pretrained(tmp_path)
    reference = reference_model(llama_dir, model.family)
    report = compare(model, reference, random_input_ids(256, 1, 8, seed=0))
    assert report.first_divergent == "layers.1"
    assert report["layers.0"].ok and report["layers.0"].rel_l2 < 1e-5


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hfport.cli", *args], check=False,
                          capture_output=True, text=True, timeout=300)


def test_cli_parity_prints_the_table(llama_dir: Path) -> None:
    result = run_cli("parity", str(llama_dir), "--seq", "5", "--batch", "3", "--seed", "9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers.2 + norm" in result.stdout and "within tolerance" in result.stdout
    assert "batch 3, seq 5, seed 9" in result.stdout
    result = run_cli("parity", str(llama_dir), "--seq", "5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["rows"][-1]["shape"] == [2, 5, 256]


def test_cli_parity_output_has_no_progress_bar(llama_dir: Path) -> None:
    """transformers' "Loading weights" bar is its own; hfport's output shows the table only."""
    result = run_cli("parity", str(llama_dir), "--seq", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Loading weights" not in result.stdout + result.stderr
    assert "it/s" not in result.stdout + result.stderr


@pytest.mark.parametrize("args, message", [
    (["--batch", "-1"], "batch must be an integer >= 1, got -1"),
    (["--seq", "0"], "seq must be an integer >= 1, got 0"),
    (["--seed", "-3"], r"seed must be an integer in [0, 2**63), got -3"),
    (["--image-size", "0", "32"], "image_size must be an integer >= 1 or a pair"),
])
def test_cli_parity_bad_arguments_are_one_line(llama_dir: Path, args: list[str],
                                               message: str) -> None:
    result = run_cli("parity", str(llama_dir), *args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"hfport: ArgumentError: compare_checkpoint: {message}")


def test_cli_parity_on_a_file_or_missing_folder_never_asks_the_hub(llama_dir: Path,
                                                                   tmp_path: Path) -> None:
    """A file, a missing path or a folder without config.json: one line at once, no traceback,
    no retries against the hub (transformers would read a path that is no folder as a repo id)."""
    weights = next(llama_dir.glob("*.safetensors"))
    cases = {weights: "is a file", tmp_path / "absent": "is not found",
             tmp_path: "has none (transformers builds the reference from it)"}
    for path, message in cases.items():
        started = time.monotonic()
        result = run_cli("parity", str(path))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert time.monotonic() - started < 60
    with pytest.raises(ArgumentError, match="is a file"):
        reference_model(weights)


def test_cli_parity_exits_1_over_tolerance(llama_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import hfport.parity

    real = hfport.parity.reference_model

    def perturbed(path: Path, family: str, **options: object) -> torch.nn.Module:
        model = real(path, family, **options)
        with torch.no_grad():
            model.model.layers[1].self_attn.o_proj.weight.mul_(1.01)
        return model

    monkeypatch.setattr(hfport.parity, "reference_model", perturbed)
    assert main(["parity", str(llama_dir), "--seq", "4"]) == 1
    assert "first divergent: layers.1" in capsys.readouterr().out


def test_demo_runs_and_matches() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    for title in ("tiny LLaMA", "tiny Mamba", "all-MiniLM-L6-v2", "ALBERT masked LM"):
        assert title in result.stdout
    assert result.stdout.count("within tolerance") == 4
    assert "head: masked_lm" in result.stdout and "filled in: " in result.stdout
    assert "layers.2 + norm" in result.stdout  # the LLaMA's three layers
    assert "layers.5" in result.stdout and "last_hidden_state" in result.stdout  # MiniLM's six
    assert "pooler_output" in result.stdout
