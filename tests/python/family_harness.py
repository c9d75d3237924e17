"""Checks a family spec against a real checkpoint, independently of hfport's C++ mapping code.

``check_family`` saves a transformers model, loads it strictly with hfport (the family chosen from
config.json) and compares every native tensor with what the spec's ops must produce, computed here
in torch from the model's own state dict. The spec is expanded here too, by Python's own evaluator,
so a bug in the C++ expansion, shape checks or ops shows up as a difference.

Views and concatenations must be bit-exact; weight_norm and neg_exp are computed in float64 and
rounded once, so they must agree to the last bit or, where float64 summation order differs, one
unit in the last place.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hfport
import torch
from safetensors.torch import load_file, save_file


class _Namespace(dict):
    """A config object: keys as attributes, so `text_config.hidden_size` evaluates."""

    def __getattr__(self, key: str) -> Any:
        if key not in self:
            raise AssertionError(f"config has no field {key!r}")
        return self[key]


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return _Namespace({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _evaluate(expr: Any, config: dict, captures: dict[str, int]) -> Any:
    if isinstance(expr, bool | int):
        return expr
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", expr)))
    env = dict(_wrap(config))
    env.update(captures)
    env.update(ceil_div=lambda a, b: -(-a // b), min=min, max=max, len=len, sum=sum,
               to_2tuple=lambda x: [x, x] if isinstance(x, int) else list(x))
    value = eval(text, {"__builtins__": {}}, env)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _with_defaults(spec: dict, config: dict) -> dict:
    config = dict(config)
    for field, expr in spec.get("config_defaults", {}).items():
        if isinstance(expr, dict):  # {"if_absent": expr}: a null stays None
            if field not in config:
                config[field] = _evaluate(expr["if_absent"], config, {})
        elif config.get(field) in (None, "auto"):
            config[field] = _evaluate(expr, config, {})
    return config


def _expand(rule: dict, ranges: dict, config: dict):
    names = rule["to"] if isinstance(rule["to"], str) else " ".join(t["name"] for t in rule["to"])
    used = [c for c in ranges if "{" + c + "}" in names]

    def walk(depth: int, captures: dict[str, int]):
        if depth == len(used):
            yield dict(captures)
            return
        for value in range(_evaluate(ranges[used[depth]], config, captures)):
            captures[used[depth]] = value
            yield from walk(depth + 1, captures)
        captures.pop(used[depth], None)

    yield from walk(0, {})


def _fill(pattern: str, captures: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(captures[m.group(1)]), pattern)


def _selected_head(spec: dict, config: dict) -> str | None:
    """The head config.json's architectures name, else the default head when it names none."""
    architectures = config.get("architectures") or []
    for arch in architectures:
        for name, head in spec.get("heads", {}).items():
            if arch in head["architectures"]:
                return name
    return spec.get("default_head") if not architectures else None


def reference_state(spec: dict, config: dict, tensors: dict[str, torch.Tensor]
                    ) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The native tensors the spec's ops make from `tensors` (torch), and the names of those
    computed through weight_norm or neg_exp (compared to one ulp)."""
    # Built-in specs come resolved from hfport.family_spec; a user spec here must be self-contained.
    assert "extends" not in spec, "pass the resolved spec (hfport.family_spec) to the harness"
    config = _with_defaults(spec, config)
    if "num_labels" not in config and isinstance(config.get("id2label"), dict):
        config["num_labels"] = len(config["id2label"])
    prefix = spec.get("base_prefix", "")
    prefixed = bool(prefix) and any(name.startswith(prefix) for name in tensors)

    def source(pattern: str, captures: dict[str, int], base: bool) -> str:
        # Base rules are read under the prefix when the checkpoint has it, bare otherwise.
        name = _fill(pattern, captures)
        if not base:
            return name
        if prefixed and not name.startswith(prefix):
            return prefix + name
        return name[len(prefix):] if not prefixed and name.startswith(prefix) else name

    ranges = spec.get("ranges", {})
    out: dict[str, torch.Tensor] = {}
    folded: set[str] = set()
    tied: list[tuple[str, str]] = []
    rules = [(rule, True) for rule in spec["params"]]
    head = _selected_head(spec, config)
    if head is not None:
        rules += [(rule, False) for rule in spec["heads"][head]["params"]]
    for rule, base in rules:
        for captures in _expand(rule, ranges, config):
            if "when" in rule and not _evaluate(rule["when"], config, captures):
                continue
            sources = [rule["from"]] if isinstance(rule["from"], str) else rule["from"]
            sources = [source(s, captures, base) for s in sources]
            if "tied_to" in rule and _evaluate(rule["tied_when"], config, captures):
                tied.append((_fill(rule["to"], captures), _fill(rule["tied_to"], captures)))
                continue
            if not all(s in tensors for s in sources):
                assert rule.get("optional"), f"{sources} not in the checkpoint"
                continue
            parts = [tensors[s] for s in sources]
            if "concat" in rule:
                t = torch.cat(parts, dim=rule["concat"])
            elif "weight_norm" in rule:
                g, v = (p.double() for p in parts)
                dim = rule["weight_norm"] % v.dim()
                other = [d for d in range(v.dim()) if d != dim]
                norm = v.pow(2).sum(dim=other, keepdim=True).sqrt()
                shape = [1] * v.dim()
                shape[dim] = v.shape[dim]
                t = (g.reshape(shape) * v / norm).to(parts[1].dtype)
            else:
                t = parts[0]
            if "transpose" in rule:
                t = t.permute(*rule["transpose"])
            if "reshape" in rule:
                t = t.reshape([_evaluate(e, config, captures) for e in rule["reshape"]])
            if "squeeze" in rule:
                t = t.squeeze(rule["squeeze"])
            if rule.get("neg_exp"):
                t = (-torch.exp(t.double())).to(t.dtype)
            compute = "weight_norm" in rule or rule.get("neg_exp")
            if "split" in rule:
                sizes = [_evaluate(e, config, captures) for e in rule["split"]["sizes"]]
                pieces = torch.split(t, sizes, dim=rule["split"].get("dim", 0))
                for target, piece in zip(rule["to"], pieces, strict=True):
                    name = _fill(target["name"], captures)
                    expected_shape = [_evaluate(e, config, captures) for e in target["shape"]]
                    assert list(piece.shape) == expected_shape, (name, piece.shape, expected_shape)
                    out[name] = piece
            else:
                name = _fill(rule["to"], captures)
                expected_shape = [_evaluate(e, config, captures) for e in rule["shape"]]
                assert list(t.shape) == expected_shape, (name, list(t.shape), expected_shape)
                out[name] = t
                if compute:
                    folded.add(name)
    for name, target in tied:
        out[name] = out[target]
    return out, folded


def _compare(state: dict, expected: dict[str, torch.Tensor], folded: set[str]) -> None:
    assert set(state) == set(expected), (
        f"hfport made {sorted(set(state) - set(expected))} extra and "
        f"{sorted(set(expected) - set(state))} fewer natives than the spec's ops"
    )
    for name, want in expected.items():
        got = torch.from_dlpack(state[name])
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        if name in folded:
            torch.testing.assert_close(got, want, rtol=2.0**-22, atol=0.0, msg=name)
        else:
            assert torch.equal(got, want), f"{name} differs from the reference"


def _assert_clean(report: hfport.LoadReport) -> None:
    assert report.ok, str(report)
    counts = report.counts
    assert counts["missing"] == counts["mismatched"] == counts["unexpected"] == 0, str(report)


def _read_folder(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(file))
    return tensors


def saved(tmp_path: Path, model: Any) -> tuple[dict[str, torch.Tensor], dict]:
    """What `save_pretrained` writes: the tensors of the file and the config.json dict (for tests
    that edit them and load through check_family_state)."""
    out = Path(tmp_path) / "saved"
    model.save_pretrained(out)
    return _read_folder(out), json.loads((out / "config.json").read_text())


def check_family(tmp_path: Path, model: Any, family: str, **load_kwargs: Any):
    """Save a transformers model, load it strict with the family chosen from config.json, and check
    every native tensor against the spec's ops computed in torch. Returns (state, report)."""
    folder = Path(tmp_path) / "checkpoint"
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    state, report = hfport.load(folder, **load_kwargs)
    assert report.family == family, f"config.json selected {report.family!r}, not {family!r}"
    _assert_clean(report)
    expected, folded = reference_state(hfport.family_spec(family), config, _read_folder(folder))
    _compare(state, expected, folded)
    return state, report


def check_family_state(tmp_path: Path, tensors: dict[str, torch.Tensor], config: dict,
                       family: str | None = None, spec: Any = None, **load_kwargs: Any):
    """The same for a synthetic checkpoint: `tensors` written as model.safetensors beside
    `config` as config.json, loaded with `spec` (a dict, a JSON file) or the built-in `family`."""
    folder = Path(tmp_path) / "checkpoint"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    state, report = hfport.load(folder, spec=spec if spec is not None else family, **load_kwargs)
    _assert_clean(report)
    if spec is None:
        spec_dict = hfport.family_spec(family)
    elif isinstance(spec, dict):
        spec_dict = spec
    else:
        spec_dict = json.loads(Path(spec).read_text())
    expected, folded = reference_state(spec_dict, config, _read_folder(folder))
    _compare(state, expected, folded)
    return state, report
