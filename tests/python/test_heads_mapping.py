"""Task heads and base prefixes as spec data (issue 14): checkpoints as transformers' task classes
save them load strict with their head, a head no spec knows is reported in its own section, and
the errors around them say what is wrong in words.

Every checkpoint here is a tiny transformers model with random init saved by `save_pretrained`;
the family harness recomputes each native tensor from the saved tensors with its own Python
reading of the spec (head selection included), so the C++ engine is checked against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import hfport
import pytest
import torch
from family_harness import check_family, saved
from hfport.errors import ConfigError, Error, LoadError
from safetensors.torch import save_file

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

LLAMA = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, pad_token_id=0)
GPT2 = dict(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32, pad_token_id=0)
VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=32,
              patch_size=8, intermediate_size=48)
LABELS = {"num_labels": 3}


def build(cls_name: str, cfg_name: str, **config_kwargs):
    torch.manual_seed(0)
    config = getattr(transformers, cfg_name)(**config_kwargs)
    return getattr(transformers, cls_name)(config)


def save(tmp_path: Path, model) -> Path:
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- heads the specs know

@pytest.mark.parametrize("family, cls, cfg, sizes, head, natives", [
    ("llama", "LlamaForCausalLM", "LlamaConfig", LLAMA, "causal_lm", {"output.weight"}),
    ("llama", "LlamaForSequenceClassification", "LlamaConfig", {**LLAMA, **LABELS},
     "sequence_classification", {"cls.out.weight"}),
    ("llama", "LlamaForTokenClassification", "LlamaConfig", {**LLAMA, **LABELS},
     "token_classification", {"cls.out.weight", "cls.out.bias"}),
    ("qwen2", "Qwen2ForSequenceClassification", "Qwen2Config", {**LLAMA, **LABELS},
     "sequence_classification", {"cls.out.weight"}),
    ("mistral", "MistralForTokenClassification", "MistralConfig", {**LLAMA, **LABELS},
     "token_classification", {"cls.out.weight", "cls.out.bias"}),
    ("gpt2", "GPT2ForSequenceClassification", "GPT2Config", {**GPT2, **LABELS},
     "sequence_classification", {"cls.out.weight"}),
    ("gpt2", "GPT2ForTokenClassification", "GPT2Config", {**GPT2, **LABELS},
     "token_classification", {"cls.out.weight", "cls.out.bias"}),
    ("vit", "ViTForImageClassification", "ViTConfig", {**VISION, **LABELS},
     "image_classification", {"cls.out.weight", "cls.out.bias"}),
    ("dinov2", "Dinov2ForImageClassification", "Dinov2Config", {**VISION, **LABELS},
     "image_classification", {"cls.out.weight", "cls.out.bias"}),
])
def test_task_class_loads_strict_with_its_head(tmp_path, family, cls, cfg, sizes, head, natives):
    model = build(cls, cfg, **sizes)
    state, report = check_family(tmp_path, model, family=family)
    assert report.head == head
    assert natives <= set(state)
    assert report.head_tensors == []
    if "cls.out.weight" in natives:
        assert state["cls.out.weight"].shape[0] == 3  # num_labels, derived from id2label


def test_videomae_video_classification(tmp_path):
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                 image_size=16, patch_size=8, num_frames=4, tubelet_size=2, **LABELS)
    state, report = check_family(tmp_path, build("VideoMAEForVideoClassification",
                                                 "VideoMAEConfig", **sizes), family="videomae")
    assert report.head == "video_classification"
    assert {"cls.norm.weight", "cls.out.weight"} <= set(state)


def test_untied_base_llama_has_no_head_to_miss(tmp_path):
    # Issue 14, case 3: LlamaModel without lm_head.weight failed with output.weight missing.
    model = build("LlamaModel", "LlamaConfig", **LLAMA, tie_word_embeddings=False)
    state, report = check_family(tmp_path, model, family="llama")
    assert report.head == "" and "output.weight" not in state
    assert "saved from the base model" in str(report)


def test_config_without_architectures_takes_the_default_head(tmp_path):
    tensors, config = saved(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    del config["architectures"]
    folder = tmp_path / "bare"
    folder.mkdir()
    save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    state, report = hfport.load(folder)
    assert report.head == "causal_lm" and "output.weight" in state


def test_dinov2_swiglu_loads_as_gate_up(tmp_path):
    # Issue 14, case 6: use_swiglu_ffn failed with 8 missing / 8 unexpected.
    model = build("Dinov2Model", "Dinov2Config", **VISION, use_swiglu_ffn=True)
    state, _ = check_family(tmp_path, model, family="dinov2")
    hidden = ((32 * 4 * 2) // 3 + 7) // 8 * 8  # transformers' Dinov2SwiGLUFFN width
    assert state["blk.0.ffn_gate_up.weight"].shape == (2 * hidden, 32)
    assert state["blk.0.ffn_down.weight"].shape == (32, hidden)
    assert "blk.0.ffn_up.weight" not in state


# ---------------------------------------------------------------- heads no spec knows

def test_unknown_head_is_reported_apart_not_failed(tmp_path):
    folder = save(tmp_path, build("GPT2DoubleHeadsModel", "GPT2Config", **GPT2))
    state, report = hfport.load(folder)
    assert report.ok and report.head == ""
    # (its lm_head is tied to wte, so save_pretrained wrote it once, as wte)
    assert sorted(report.head_tensors) == ["multiple_choice_head.summary.bias",
                                           "multiple_choice_head.summary.weight"]
    assert "GPT2DoubleHeadsModel has no head in family 'gpt2'" in report.head_note
    text = str(report)
    assert "head tensors not loaded (2)" in text and "multiple_choice_head.summary.weight" in text
    assert "output.weight" not in state  # the base model alone, nothing by a guess

    with pytest.raises(LoadError) as caught:
        hfport.load(folder, heads="require")
    first_line = str(caught.value).splitlines()[0]
    assert "2 head tensors not loaded" in first_line


def test_heads_none_loads_the_base_alone(tmp_path):
    folder = save(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    state, report = hfport.load(folder, heads="none")
    assert report.ok and report.head == "" and "output.weight" not in state
    assert report.head_tensors == ["lm_head.weight"]
    assert 'heads="none"' in report.head_note
    with pytest.raises(ValueError, match="heads must be one of"):
        hfport.load(folder, heads="all")


def test_vit_masked_image_modeling_head_is_reported(tmp_path):
    folder = save(tmp_path, build("ViTForMaskedImageModeling", "ViTConfig", **VISION))
    _, report = hfport.load(folder)
    assert report.ok and report.head == ""
    assert report.head_tensors and all(n.startswith("decoder.") for n in report.head_tensors)


# ---------------------------------------------------------------- errors that say why

def test_missing_names_under_one_prefix_say_so_first(tmp_path):
    folder = save(tmp_path, build("ViTForImageClassification", "ViTConfig", **VISION, **LABELS))
    spec = hfport.family_spec("vit")
    del spec["base_prefix"], spec["heads"]
    spec["family"] = "vit_without_prefix"
    with pytest.raises(LoadError) as caught:
        hfport.load(folder, spec=spec)
    first_line = str(caught.value).splitlines()[0]
    missing = sum(1 for line in str(caught.value).splitlines() if "<- not in the checkpoint" in line)
    assert missing > 0
    assert "missing names are in the checkpoint under the prefix 'vit.'" in first_line
    assert '"base_prefix": "vit."' in first_line


def test_a_switched_off_rule_names_its_config_switch(tmp_path):
    # A SwiGLU checkpoint whose config.json lost use_swiglu_ffn: the error names the switch.
    tensors, config = saved(tmp_path, build("Dinov2Model", "Dinov2Config", **VISION,
                                            use_swiglu_ffn=True))
    config["use_swiglu_ffn"] = False
    folder = tmp_path / "edited"
    folder.mkdir()
    save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LoadError) as caught:
        hfport.load(folder)
    message = str(caught.value)
    assert "its rule applies when `not use_swiglu_ffn` (config.json: use_swiglu_ffn = false)" in message
    assert "only when `use_swiglu_ffn` (config.json: use_swiglu_ffn = false)" in message


def test_requires_names_the_condition_and_the_values(tmp_path):
    folder = save(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    spec = hfport.family_spec("llama")
    spec["requires"] = ["num_hidden_layers == 1"]
    with pytest.raises(ConfigError, match=r"family 'llama' covers only configs where "
                                          r"num_hidden_layers == 1; config.json has "
                                          r"num_hidden_layers = 2"):
        hfport.load(folder, spec=spec)


def test_forced_family_that_config_contradicts_warns(tmp_path, capsys):
    # Issue 14, case 7: hfport map gemma_dir --family llama said nothing about gemma.
    model = build("GemmaForCausalLM", "GemmaConfig", vocab_size=64, hidden_size=32,
                  intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8)
    folder = save(tmp_path, model)
    with pytest.warns(UserWarning, match=r"family 'llama' was forced, but config.json says "
                                         r"model_type 'gemma' \(architectures "
                                         r"'GemmaForCausalLM'\)"):
        _, report = hfport.load(folder, family="llama")
    assert report.warnings and "matches model_type 'llama'" in report.warnings[0]

    from hfport.cli import main

    main(["map", str(folder), "--family", "llama"])
    err = capsys.readouterr().err
    assert "hfport: warning: family 'llama' was forced" in err and "gemma" in err


def test_the_family_it_matches_gives_no_warning(tmp_path, recwarn):
    folder = save(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    _, report = hfport.load(folder, family="llama")
    assert report.warnings == [] and not [w for w in recwarn if "forced" in str(w.message)]


def test_spec_and_family_together_are_refused(tmp_path):
    folder = save(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    with pytest.raises(TypeError, match="pass spec= or family=, not both"):
        hfport.load(folder, spec="llama", family="llama")


def test_spec_parse_errors_for_heads():
    base = {"family": "t", "params": [], "ranges": {}}
    with pytest.raises(hfport.errors.SpecError, match="'default_head' names 'x', which is not"):
        hfport._hfport._check_spec(json.dumps({**base, "default_head": "x"}), "spec t")
    twice = {**base, "heads": {
        "a": {"architectures": ["M"], "params": []},
        "b": {"architectures": ["M"], "params": []}}}
    with pytest.raises(hfport.errors.SpecError, match="architecture 'M' is already head 'a''s"):
        hfport._hfport._check_spec(json.dumps(twice), "spec t")
    with pytest.raises(hfport.errors.SpecError, match="unknown field 'rules'"):
        hfport._hfport._check_spec(json.dumps({**base, "heads": {"a": {"architectures": ["M"],
                                                                       "rules": []}}}), "spec t")


# ---------------------------------------------------------------- every hint is a call that works

def test_hint_pass_spec_works_for_load_and_from_pretrained(tmp_path):
    # Issue 14, case 4: from_pretrained's errors said "pass spec=..." but it took no spec.
    tensors, config = saved(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    del config["model_type"], config["architectures"]
    folder = tmp_path / "unnamed"
    folder.mkdir()
    save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    for call in (hfport.load, hfport.models.from_pretrained):
        with pytest.raises(hfport.errors.UnknownFamilyError, match=r"pass spec=\.\.\."):
            call(folder)
    _, report = hfport.load(folder, spec="llama")
    assert report.ok and report.head == "causal_lm"  # the default head: no architectures
    model = hfport.models.from_pretrained(folder, spec="llama")
    assert model.family == "llama" and model.head == "causal_lm"
    assert hfport.models.from_pretrained(folder, family="llama").head == "causal_lm"


def test_hint_strict_false_works(tmp_path):
    folder = save(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    (folder / "config.json").write_text(
        (folder / "config.json").read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 3'))
    with pytest.raises(LoadError) as caught:
        hfport.load(folder)
    assert "hfport.load(path, strict=False) returns this report" in str(caught.value)
    _, report = hfport.load(folder, strict=False)
    assert not report.ok and report.missing
    # A native model needs every parameter: strict=False there still refuses, saying so.
    with pytest.raises(LoadError, match="needs every parameter its spec declares"):
        hfport.models.from_pretrained(folder, strict=False)


def test_hint_base_prefix_works(tmp_path):
    folder = save(tmp_path, build("ViTForImageClassification", "ViTConfig", **VISION, **LABELS))
    spec = hfport.family_spec("vit")
    del spec["base_prefix"], spec["heads"]
    with pytest.raises(LoadError, match='"base_prefix": "vit."'):
        hfport.load(folder, spec=spec)
    _, report = hfport.load(folder, spec={**spec, "base_prefix": "vit."})
    assert report.ok and report.head_tensors == ["classifier.bias", "classifier.weight"]


def test_hint_heads_none_works_for_a_head_without_a_forward(tmp_path):
    folder = save(tmp_path, build("LlamaForCausalLM", "LlamaConfig", **LLAMA))
    spec = hfport.family_spec("llama")
    spec["family"] = "llama"
    spec["heads"] = {"scorer": {"architectures": ["LlamaForCausalLM"],
                                "params": spec["heads"]["causal_lm"]["params"]}}
    del spec["default_head"]
    with pytest.raises(Error, match=r"no forward for the head 'scorer'.*heads=\"none\""):
        hfport.models.from_pretrained(folder, spec=spec)
    model = hfport.models.from_pretrained(folder, spec=spec, heads="none")
    assert model.head == "" and "logits" not in model.forward(torch.tensor([[1, 2, 3]]))


def test_sequence_classifier_without_pad_token_refuses_a_batch(tmp_path):
    model = build("LlamaForSequenceClassification", "LlamaConfig",
                  **{**LLAMA, "pad_token_id": None}, **LABELS)
    native = hfport.models.from_pretrained(save(tmp_path, model))
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    with pytest.raises(hfport.errors.ArgumentError, match="pass one row at a time"):
        native(ids)
    one = torch.from_dlpack(native(ids[:1]).logits)
    with torch.no_grad():
        expected = model(ids[:1]).logits
    assert torch.allclose(one, expected, rtol=1e-5, atol=1e-6)
