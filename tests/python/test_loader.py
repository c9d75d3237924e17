"""The strict loader and its report on broken checkpoints: every finding named, nothing guessed.

The checkpoints are a tiny transformers LLaMA (random init, save_pretrained) and copies of it with
one thing broken. The spec is written here, so these tests exercise the engine alone; the built-in
families have their own tests (test_family_*.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import hfport
import pytest
import torch
import transformers
from hfport.errors import (
    ExpressionError,
    LoadError,
    SpecError,
    UnknownFamilyError,
)
from safetensors.torch import load_file, save_file

LAYER = "model.layers.{i}."
SPEC = {
    "family": "test_llama",
    "source": "transformers LlamaForCausalLM",
    "config_defaults": {"head_dim": "hidden_size // num_attention_heads"},
    "ranges": {"i": "num_hidden_layers"},
    "params": [
        {"to": "tok_embd.weight", "from": "model.embed_tokens.weight",
         "shape": ["vocab_size", "hidden_size"]},
        {"to": "blk.{i}.attn_norm.weight", "from": LAYER + "input_layernorm.weight",
         "shape": ["hidden_size"]},
        {"to": "blk.{i}.attn_qkv.weight", "concat": 0,
         "from": [LAYER + "self_attn.q_proj.weight", LAYER + "self_attn.k_proj.weight",
                  LAYER + "self_attn.v_proj.weight"],
         "shape": ["(num_attention_heads + 2*num_key_value_heads) * head_dim", "hidden_size"]},
        {"to": "blk.{i}.attn_out.weight", "from": LAYER + "self_attn.o_proj.weight",
         "shape": ["hidden_size", "num_attention_heads * head_dim"]},
        {"to": "blk.{i}.ffn_norm.weight", "from": LAYER + "post_attention_layernorm.weight",
         "shape": ["hidden_size"]},
        {"to": "blk.{i}.ffn_gate_up.weight", "concat": 0,
         "from": [LAYER + "mlp.gate_proj.weight", LAYER + "mlp.up_proj.weight"],
         "shape": ["2 * intermediate_size", "hidden_size"]},
        {"to": "blk.{i}.ffn_down.weight", "from": LAYER + "mlp.down_proj.weight",
         "shape": ["hidden_size", "intermediate_size"]},
        {"to": "output_norm.weight", "from": "model.norm.weight", "shape": ["hidden_size"]},
        {"to": "output.weight", "from": "lm_head.weight", "shape": ["vocab_size", "hidden_size"],
         "tied_to": "tok_embd.weight", "tied_when": "tie_word_embeddings"},
    ],
    "ignore": ["model.layers.*.self_attn.rotary_emb.inv_freq"],
}


def _tiny_llama(tie: bool) -> transformers.LlamaForCausalLM:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tie)
    return transformers.LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("llama")
    _tiny_llama(tie=False).save_pretrained(folder)
    return folder


def _variant(src: Path, dst: Path, edit) -> Path:
    """A copy of the checkpoint in `src` with its tensors and config edited."""
    dst.mkdir()
    tensors = load_file(src / "model.safetensors")
    config = json.loads((src / "config.json").read_text())
    edit(tensors, config)
    save_file(tensors, dst / "model.safetensors")
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_clean_checkpoint_loads_every_parameter_zero_copy(llama_dir):
    state, report = hfport.load(llama_dir, spec=SPEC)
    assert report.ok and report.counts["loaded"] == len(state) == 3 * 6 + 3
    reference = load_file(llama_dir / "model.safetensors")
    fused = torch.cat([reference[f"model.layers.1.self_attn.{p}_proj.weight"] for p in "qkv"])
    assert torch.equal(torch.from_dlpack(state["blk.1.attn_qkv.weight"]), fused)
    # A rename is a view into the mapped file: its memory lies inside a region of this process
    # that maps model.safetensors (/proc/self/maps); the fused tensor is new memory.
    from test_zero_copy import mappings_of

    regions = mappings_of(llama_dir / "model.safetensors")
    loaded = torch.from_dlpack(state["blk.2.ffn_down.weight"])
    fused = torch.from_dlpack(state["blk.2.ffn_gate_up.weight"])

    def mapped(t: torch.Tensor) -> bool:
        end = t.data_ptr() + t.numel() * t.element_size()
        return any(start <= t.data_ptr() and end <= stop for start, stop, _ in regions)

    assert mapped(loaded) and not mapped(fused)
    entry = next(p for p in report.params if p["name"] == "blk.2.ffn_down.weight")
    assert entry["ops"] == ["rename"] and entry["sources"] == ["model.layers.2.mlp.down_proj.weight"]


def test_report_folds_layer_runs_and_lists_ops(llama_dir):
    _, report = hfport.load(llama_dir, spec=SPEC)
    text = str(report)
    assert "blk.{0..2}.attn_qkv.weight" in text and "concat [64, 32] F32" in text
    assert "blk.0.attn_qkv.weight" not in text


def test_base_model_checkpoint_loads_without_the_prefix(tmp_path):
    torch.manual_seed(0)
    model = _tiny_llama(tie=True).model  # LlamaModel: names without "model."
    folder = tmp_path / "base"
    model.save_pretrained(folder)
    assert not any(n.startswith("model.") for n in load_file(folder / "model.safetensors"))
    with pytest.raises(LoadError, match=r"tok_embd\.weight <- not in the checkpoint: "
                       r"model\.embed_tokens\.weight\n +did you mean: embed_tokens\.weight"):
        hfport.load(folder, spec=SPEC)
    state, report = hfport.load(folder, spec=dict(SPEC, base_prefix="model."))
    assert report.ok and "names without the 'model.' prefix" in str(report)
    assert torch.equal(torch.from_dlpack(state["blk.0.ffn_down.weight"]),
                       model.layers[0].mlp.down_proj.weight.detach())


def test_dropped_weight_is_named_with_the_near_name_suggested(llama_dir, tmp_path):
    def edit(tensors, config):
        tensors["model.layers.1.mlp.up_prj.weight"] = tensors.pop("model.layers.1.mlp.up_proj.weight")

    broken = _variant(llama_dir, tmp_path / "dropped", edit)
    with pytest.raises(LoadError) as info:
        hfport.load(broken, spec=SPEC)
    message = str(info.value)
    assert "1 missing, 0 mismatched, 1 unexpected" in message
    assert "blk.1.ffn_gate_up.weight <- not in the checkpoint: model.layers.1.mlp.up_proj.weight" in message
    assert "did you mean: model.layers.1.mlp.up_prj.weight" in message


def test_wrong_shape_names_expected_got_and_the_config_fields(llama_dir, tmp_path):
    def edit(tensors, config):
        tensors["model.layers.0.mlp.down_proj.weight"] = torch.randn(32, 40)

    broken = _variant(llama_dir, tmp_path / "shape", edit)
    with pytest.raises(LoadError, match=r"blk\.0\.ffn_down\.weight <- model\.layers\.0\.mlp\.down_proj"
                       r"\.weight: expected \[32, 48\] \(from hidden_size, intermediate_size\), "
                       r"got \[32, 40\]"):
        hfport.load(broken, spec=SPEC)


def test_concat_parts_that_do_not_fit_are_a_mismatch(llama_dir, tmp_path):
    def edit(tensors, config):
        tensors["model.layers.2.self_attn.k_proj.weight"] = torch.randn(16, 30)

    broken = _variant(llama_dir, tmp_path / "concat", edit)
    _, report = hfport.load(broken, spec=SPEC, strict=False)
    [entry] = report.mismatched
    assert entry["name"] == "blk.2.attn_qkv.weight"
    assert entry["detail"] == ("cannot concat along dim 0: model.layers.2.self_attn.k_proj.weight "
                               "is [16, 30] but model.layers.2.self_attn.q_proj.weight is [32, 32]")


def test_optimizer_and_ema_keys_are_unexpected(llama_dir, tmp_path):
    def edit(tensors, config):
        tensors["optimizer.state.0.exp_avg"] = torch.randn(4)
        tensors["optimizer.state.1.exp_avg"] = torch.randn(4)
        tensors["ema.model.norm.weight"] = torch.randn(32)

    broken = _variant(llama_dir, tmp_path / "extra", edit)
    with pytest.raises(LoadError) as info:
        hfport.load(broken, spec=SPEC)
    assert "0 missing, 0 mismatched, 3 unexpected" in str(info.value)
    assert "optimizer.state.{0,1}.exp_avg" in str(info.value)
    state, report = hfport.load(broken, spec=SPEC, strict=False)
    assert sorted(report.unexpected) == ["ema.model.norm.weight", "optimizer.state.0.exp_avg",
                                         "optimizer.state.1.exp_avg"]
    assert len(state) == report.counts["loaded"]


def test_permissive_mode_reports_the_same_findings_and_leaves_missing_out(llama_dir, tmp_path):
    def edit(tensors, config):
        del tensors["model.layers.0.input_layernorm.weight"]
        tensors["model.layers.1.self_attn.o_proj.weight"] = torch.randn(32, 8)
        tensors["stray.weight"] = torch.randn(2)

    broken = _variant(llama_dir, tmp_path / "permissive", edit)
    with pytest.raises(LoadError) as info:
        hfport.load(broken, spec=SPEC)
    state, report = hfport.load(broken, spec=SPEC, strict=False)
    assert report.error_message == str(info.value)
    assert [m["name"] for m in report.missing] == ["blk.0.attn_norm.weight"]
    assert [m["name"] for m in report.mismatched] == ["blk.1.attn_out.weight"]
    assert report.unexpected == ["stray.weight"]
    assert "blk.0.attn_norm.weight" not in state and "blk.1.attn_out.weight" not in state
    assert len(state) == report.counts["loaded"] == 3 * 6 + 3 - 2


def test_untied_config_without_lm_head_is_an_error(llama_dir, tmp_path):
    def edit(tensors, config):
        del tensors["lm_head.weight"]

    broken = _variant(llama_dir, tmp_path / "nohead", edit)
    with pytest.raises(LoadError, match=r"output\.weight <- not in the checkpoint: lm_head\.weight"):
        hfport.load(broken, spec=SPEC)


def test_tied_head_is_the_embedding_and_a_stored_copy_is_ignored(tmp_path):
    folder = tmp_path / "tied"
    _tiny_llama(tie=True).save_pretrained(folder)
    state, report = hfport.load(folder, spec=SPEC)
    assert report.tied == ["output.weight"]
    assert torch.from_dlpack(state["output.weight"]).data_ptr() == \
        torch.from_dlpack(state["tok_embd.weight"]).data_ptr()

    def edit(tensors, config):
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()

    stored = _variant(folder, tmp_path / "tied_stored", edit)
    _, report = hfport.load(stored, spec=SPEC)
    assert {"name": "lm_head.weight", "why": "tied to tok_embd.weight"} in report.ignored


def test_split_sizes_that_do_not_add_up(tmp_path):
    spec = {"family": "split_test", "params": [
        {"to": [{"name": "dt", "shape": ["dt_rank", 8]}, {"name": "b", "shape": ["state_size", 8]},
                {"name": "c", "shape": ["state_size", 8]}],
         "from": "x_proj.weight", "split": {"dim": 0, "sizes": ["dt_rank", "state_size", "state_size"]}},
    ]}
    folder = tmp_path / "split"
    folder.mkdir()
    save_file({"x_proj.weight": torch.randn(36, 8)}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"dt_rank": 4, "state_size": 16}))
    state, _report = hfport.load(folder, spec=spec)
    assert torch.equal(torch.from_dlpack(state["c"]),
                       load_file(folder / "model.safetensors")["x_proj.weight"][20:])
    (folder / "config.json").write_text(json.dumps({"dt_rank": 2, "state_size": 16}))
    with pytest.raises(LoadError, match=r"split sizes \[dt_rank=2, state_size=16, state_size=16\] add "
                       r"up to 34, but the tensor is \[36, 8\]: 36 along dim 0"):
        hfport.load(folder, spec=spec)


def test_weight_norm_pair_with_one_half_missing(tmp_path):
    spec = {"family": "wn_test", "params": [
        {"to": "conv.weight", "from": ["conv.weight_g", "conv.weight_v"], "weight_norm": 0,
         "shape": ["channels", "channels", 3]},
    ]}
    folder = tmp_path / "wn"
    folder.mkdir()
    save_file({"conv.weight_v": torch.randn(4, 4, 3)}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"channels": 4}))
    with pytest.raises(LoadError, match=r"conv\.weight <- not in the checkpoint: conv\.weight_g"):
        hfport.load(folder, spec=spec)
    _, report = hfport.load(folder, spec=spec, strict=False)
    assert report.unexpected == []  # the half that is there belongs to the missing parameter


def test_weight_norm_fold_matches_torch_parametrization(tmp_path):
    torch.manual_seed(1)
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(6, 5, 3))
    with torch.no_grad():
        conv.parametrizations.weight.original0.uniform_(0.5, 2.0)
    sd = {k: v.detach().contiguous() for k, v in conv.state_dict().items()}
    spec = {"family": "wn", "params": [
        {"to": "conv.weight", "weight_norm": 0, "shape": [5, 6, 3],
         "from": ["parametrizations.weight.original0", "parametrizations.weight.original1"]},
        {"to": "conv.bias", "from": "bias", "shape": [5]},
    ]}
    folder = tmp_path / "wn"
    folder.mkdir()
    save_file(sd, folder / "model.safetensors")
    (folder / "config.json").write_text("{}")
    state, _ = hfport.load(folder, spec=spec)
    torch.testing.assert_close(torch.from_dlpack(state["conv.weight"]), conv.weight.detach(),
                               rtol=1e-6, atol=0)


def test_unknown_model_type_lists_the_known_families(llama_dir, tmp_path):
    def edit(tensors, config):
        config["model_type"] = "not_a_model"
        config["architectures"] = ["NotAModelForCausalLM"]

    broken = _variant(llama_dir, tmp_path / "unknown", edit)
    with pytest.raises(UnknownFamilyError) as info:
        hfport.load(broken)
    message = str(info.value)
    assert "no built-in family for model_type 'not_a_model'" in message
    assert "NotAModelForCausalLM" in message and "Known families:" in message
    for family in hfport.families():
        if hfport.family_spec(family).get("match"):
            assert f"\n  {family}: model_type" in message


def test_dtype_casts_floating_parameters(llama_dir):
    state, report = hfport.load(llama_dir, spec=SPEC, dtype="bfloat16", stats=False)
    assert {t.dtype for t in state.values()} == {"BF16"}
    reference = load_file(llama_dir / "model.safetensors")["model.norm.weight"].bfloat16()
    assert torch.equal(torch.from_dlpack(state["output_norm.weight"]), reference)
    assert all("stats" not in p for p in report.params)


def test_map_reports_without_loading(llama_dir, tmp_path):
    def edit(tensors, config):
        del tensors["model.norm.weight"]

    broken = _variant(llama_dir, tmp_path / "map", edit)
    report = hfport.map_checkpoint(broken, spec=SPEC)
    assert not report.ok and [m["name"] for m in report.missing] == ["output_norm.weight"]
    assert all("stats" not in p for p in report.params)


def test_spec_from_a_json_file(llama_dir, tmp_path):
    file = tmp_path / "spec.json"
    file.write_text(json.dumps(SPEC))
    _, report = hfport.load(llama_dir, spec=file)
    assert report.family == "test_llama" and report.ok


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s["params"][0].update(tranpose=[1, 0]), r"unknown field 'tranpose'"),
    (lambda s: s["params"][2].update(shape=["hidden_size +", 1]), r"unexpected end"),
    (lambda s: s["params"][1].update(to="blk.{j}.attn_norm.weight"), r"same captures"),
    (lambda s: s["params"][6].update(concat=0), r"'concat' needs at least two 'from' names"),
    (lambda s: s["params"].append(dict(s["params"][0])), r"produced by two rules"),
    (lambda s: s.update(ranges={"i": "num_hidden_layers", "j": "depths[i]"}) or
     s["params"][1].update(to="blk.{i}.{j}.x", **{"from": "a.{i}.b"}), r"same captures"),
])
def test_spec_errors_name_the_rule(llama_dir, edit, message):
    spec = json.loads(json.dumps(SPEC))
    edit(spec)
    with pytest.raises(SpecError, match=message):
        hfport.load(llama_dir, spec=spec)


def test_expression_error_names_the_missing_config_field(llama_dir):
    spec = json.loads(json.dumps(SPEC))
    spec["params"][6]["shape"] = ["hidden_size", "ffn_dim"]
    with pytest.raises(ExpressionError, match=r"rule 6 \(blk\.\{i\}\.ffn_down\.weight\) shape: "
                       r"expression 'ffn_dim': config.json has no field 'ffn_dim'"):
        hfport.load(llama_dir, spec=spec)


def test_no_family_without_config_json(tmp_path):
    folder = tmp_path / "noconfig"
    folder.mkdir()
    save_file({"a": torch.randn(2)}, folder / "model.safetensors")
    with pytest.raises(UnknownFamilyError, match="no config.json to choose a family from"):
        hfport.load(folder)


def test_sharded_checkpoint_loads_like_a_single_file(llama_dir, tmp_path):
    sharded = tmp_path / "sharded"
    _tiny_llama(tie=False).save_pretrained(sharded, max_shard_size="20KB")
    assert len(list(sharded.glob("*.safetensors"))) > 1
    state, report = hfport.load(sharded, spec=SPEC)
    single, _ = hfport.load(llama_dir, spec=SPEC)
    assert report.ok and set(state) == set(single)
    for name in state:
        assert torch.equal(torch.from_dlpack(state[name]), torch.from_dlpack(single[name])), name


def test_concat_of_different_dtypes_is_a_mismatch_even_when_permissive(llama_dir, tmp_path):
    def edit(tensors, config):
        name = "model.layers.0.self_attn.k_proj.weight"
        tensors[name] = tensors[name].half()

    broken = _variant(llama_dir, tmp_path / "dtypes", edit)
    state, report = hfport.load(broken, spec=SPEC, strict=False)
    [entry] = report.mismatched
    assert entry["detail"] == ("cannot concat model.layers.0.self_attn.k_proj.weight (F16) with "
                               "model.layers.0.self_attn.q_proj.weight (F32)")
    assert "blk.0.attn_qkv.weight" not in state


def test_untrusted_config_sizes_are_bounded(llama_dir, tmp_path):
    def edit(tensors, config):
        config["num_hidden_layers"] = 10**12

    broken = _variant(llama_dir, tmp_path / "huge", edit)
    with pytest.raises(ExpressionError, match=r"range \{i\}: 'num_hidden_layers' gives "
                       r"1000000000000, outside \[0, 1048576\]"):
        hfport.load(broken, spec=SPEC)


def test_user_spec_extends_a_builtin(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "extends"
    _tiny_llama(tie=False).save_pretrained(folder)
    spec = {"family": "llama_norm_renamed", "extends": "llama", "params": [
        {"to": "output_norm.weight", "from": "model.norm.weight", "shape": ["hidden_size"]},
        {"to": "extra.weight", "from": "model.extra.weight", "shape": [2], "optional": True},
    ]}
    state, report = hfport.load(folder, spec=spec)
    assert report.family == "llama_norm_renamed" and report.ok
    assert report.absent == ["extra.weight"] and "blk.2.attn_qkv.weight" in state
    with pytest.raises(SpecError, match=r"no built-in family 'nope'"):
        hfport.load(folder, spec={"family": "x", "extends": "nope", "params": []})
