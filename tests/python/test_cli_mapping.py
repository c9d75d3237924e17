"""`hfport map`, `hfport convert` and `hfport diff` on a tiny LLaMA written by transformers."""

from __future__ import annotations

import json

import hfport
import pytest
import torch
from hfport.cli import main
from safetensors.torch import load_file, save_file
from test_loader import SPEC, _tiny_llama


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_llama")
    _tiny_llama(tie=False).save_pretrained(folder)
    spec = folder.parent / "test_llama_spec.json"
    spec.write_text(json.dumps(SPEC))
    return folder, spec


def test_map_prints_the_report_and_fails_on_findings(checkpoint, tmp_path, capsys):
    folder, spec = checkpoint
    assert main(["map", str(folder), "--spec", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "21 loaded, 0 tied" in out and "blk.{0..2}.ffn_gate_up.weight" in out
    broken = tmp_path / "broken"
    broken.mkdir()
    tensors = load_file(folder / "model.safetensors")
    del tensors["model.norm.weight"]
    save_file(tensors, broken / "model.safetensors")
    (broken / "config.json").write_text((folder / "config.json").read_text())
    assert main(["map", str(broken), "--spec", str(spec), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["missing"] == 1 and not report["ok"]


def test_convert_writes_native_names_and_the_report(checkpoint, tmp_path, capsys):
    folder, spec = checkpoint
    out = tmp_path / "native.safetensors"
    assert main(["convert", str(folder), str(out), "--spec", str(spec), "--dtype", "bf16"]) == 0
    written = load_file(out)
    state, _ = hfport.load(folder, spec=spec, dtype="bf16")
    assert set(written) == set(state)
    for name, tensor in state.items():
        assert torch.equal(written[name], torch.from_dlpack(tensor)), name
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["family"] == "test_llama" and report["ok"]
    assert hfport.open(out).metadata()["hfport.family"] == "test_llama"


def test_convert_writes_a_tied_parameter_once(tmp_path, capsys):
    folder = tmp_path / "tied"
    _tiny_llama(tie=True).save_pretrained(folder)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "native.safetensors"
    assert main(["convert", str(folder), str(out), "--spec", str(spec)]) == 0
    written = hfport.open(out)
    assert "output.weight" not in written and "tok_embd.weight" in written
    assert json.loads(written.metadata()["hfport.ties"]) == {"output.weight": "tok_embd.weight"}


def test_diff_reports_changed_and_one_sided_tensors(checkpoint, tmp_path, capsys):
    folder, _ = checkpoint
    original = folder / "model.safetensors"
    assert main(["diff", str(original), str(original)]) == 0
    tensors = load_file(original)
    tensors["model.norm.weight"] = tensors["model.norm.weight"] + 0.25
    tensors["model.layers.0.input_layernorm.weight"][3] = float("inf")
    del tensors["lm_head.weight"]
    tensors["extra"] = torch.ones(2)
    changed = tmp_path / "changed.safetensors"
    save_file(tensors, changed)
    capsys.readouterr()
    assert main(["diff", str(original), str(changed), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["only_in_a"] == ["lm_head.weight"] and result["only_in_b"] == ["extra"]
    rows = {r["name"]: r for r in result["tensors"] if r["status"] != "equal"}
    assert set(rows) == {"model.norm.weight", "model.layers.0.input_layernorm.weight"}
    assert rows["model.norm.weight"]["differing"] == 32
    assert rows["model.norm.weight"]["max_abs"] == pytest.approx(0.25)
    inf_row = rows["model.layers.0.input_layernorm.weight"]
    assert inf_row["inf_mismatch"] == 1 and inf_row["max_abs"] == float("inf")
