"""Seed corpora for the libFuzzer harnesses in tests/fuzz, one folder per target.

    python tests/fuzz/make_corpus.py [OUT]      (OUT defaults to build/fuzz/corpus)

Seeds are real files, generated rather than committed: safetensors files written by
safetensors.torch and safetensors.numpy, index.json files in the form transformers writes them
for the shards fuzz_sharded_index.cpp creates, the family specs in csrc/mapping/families with a
transformers config.json of their model type, expressions taken from those specs, and DLPack
descriptions of torch tensors in the byte layout fuzz_from_dlpack.cpp reads. Rerunning rewrites
the seeds and leaves the fuzzers' own corpus files in the same folders alone.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
import safetensors.torch
import torch

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ROOT / "csrc" / "mapping" / "families"


def write_seeds(folder: Path, seeds: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (folder / f"seed-{name}").write_bytes(data)
    print(f"{folder}: {len(seeds)} seeds")


def safetensors_seeds() -> dict[str, bytes]:
    t = torch.arange(24)
    save = safetensors.torch.save
    seeds = {
        "f32-2x3-metadata": save({"w": t[:6].float().reshape(2, 3)}, {"format": "pt"}),
        "f16-bf16": save({"a": t[:4].half(), "b": t[:4].bfloat16().reshape(2, 2)}),
        "ints": save({
            "i8": t[:3].to(torch.int8), "i16": t[:2].to(torch.int16),
            "i32": t[:2].to(torch.int32), "i64": t[:3],
            "u8": t[:5].to(torch.uint8), "u16": t[:2].to(torch.uint16),
            "u32": t[:2].to(torch.uint32), "u64": t[:1].to(torch.uint64),
        }),
        "bool-f64": save({"mask": t[:3] > 1, "x": t[:1].double().reshape(1, 1, 1)}),
        "float8": save({
            "e4m3": t[:4].float().to(torch.float8_e4m3fn),
            "e5m2": t[:2].float().to(torch.float8_e5m2),
        }),
        "zero-size": save({"empty": torch.zeros(0), "hole": torch.zeros(2, 0, 3, dtype=torch.int16),
                           "after": t[:2].float()}),
        "scalar": save({"s": torch.tensor(1.5)}),
        "empty-file": save({}),
        "metadata-only": save({}, {"format": "pt", "note": "no tensors"}),
        "layers": save({f"model.layers.{i}.weight": t[:4].float().reshape(2, 2) for i in range(4)},
                       {"format": "pt", "total": "4"}),
    }
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    seeds["numpy-f32-i32"] = safetensors.numpy.save({"a": a, "b": np.arange(2, dtype=np.int32)})
    seeds["numpy-f16-zero"] = safetensors.numpy.save(
        {"z": np.zeros((0, 5), dtype=np.float16), "one": np.ones(1, dtype=np.float16)},
        {"source": "numpy"})
    return seeds


# The fixture fuzz_sharded_index.cpp builds: shard file -> its tensors with their byte sizes.
SHARDS = {
    "model-00001-of-00003.safetensors": {"embed.weight": 24, "norm.weight": 6},
    "model-00002-of-00003.safetensors": {"attn.q.weight": 8, "attn.k.weight": 0},
    "nested/model-00003-of-00003.safetensors": {"lm_head.weight": 24},
}


def index_json(shards: dict[str, dict[str, int]], metadata: Any = None) -> bytes:
    """An index as transformers writes it: total_size, then the weight map sorted by name."""
    weight_map = {name: shard for shard, tensors in shards.items() for name in tensors}
    total = sum(size for tensors in shards.values() for size in tensors.values())
    index = {"metadata": {"total_size": total} if metadata is None else metadata,
             "weight_map": dict(sorted(weight_map.items()))}
    return (json.dumps(index, indent=2) + "\n").encode()


def index_seeds() -> dict[str, bytes]:
    first, second, third = SHARDS
    seeds = {
        "all-shards": index_json(SHARDS),
        "one-shard": index_json({first: SHARDS[first]}),
        "nested-only": index_json({third: SHARDS[third]}),
        "alias-inside": index_json({"alias.safetensors": SHARDS[first], second: SHARDS[second]}),
        "link-outside": index_json({"outside.safetensors": {"outside.weight": 4}}),
        "dotdot": index_json({"../elsewhere/outside.safetensors": {"outside.weight": 4}}),
        "absolute": index_json({"/etc/hostname": {"x": 1}}),
        "missing-shard": index_json({"model-00009-of-00009.safetensors": {"x": 1}}),
        "empty-shard": index_json({"empty.safetensors": {"x": 1}}),
        "text-shard": index_json({"notes.txt": {"x": 1}}),
        "folder-shard": index_json({"nested": {"x": 1}}),
        "link-loop": index_json({"loop.safetensors": {"x": 1}}),
        "dangling-link": index_json({"dangling.safetensors": {"x": 1}}),
        "metadata-strings": index_json(SHARDS, {"format": "pt", "total_size": "74"}),
    }
    # Rules broken on purpose: a tensor left out, one put in the wrong shard, and a shard and a
    # link to it both opened, so that each tensor is in two shards.
    weight_map = {name: shard for shard, tensors in SHARDS.items() for name in tensors}
    for name, change in {
        "unlisted-tensor": lambda m: m.pop("norm.weight"),
        "wrong-shard": lambda m: m.update({"norm.weight": second}),
        "in-two-shards": lambda m: m.update({"norm.weight": "alias.safetensors"}),
    }.items():
        changed = dict(weight_map)
        change(changed)
        seeds[name] = json.dumps({"weight_map": changed}).encode()
    return seeds


def transformers_config(model_type: str) -> dict[str, Any]:
    """The default config.json transformers writes for a model type; {} for one it lacks."""
    import transformers

    try:
        return transformers.AutoConfig.for_model(model_type).to_dict()
    except (ValueError, KeyError):
        return {}


def expressions_in(value: Any, key: str = "") -> list[str]:
    """Every expression a spec holds: shapes, split sizes, conditions, defaults and ranges."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("config_defaults", "ranges"):
                found += [e for e in v.values() if isinstance(e, str)]
            else:
                found += expressions_in(v, k)
    elif isinstance(value, list):
        for item in value:
            found += expressions_in(item, key)
    elif isinstance(value, str) and key in ("shape", "sizes", "when", "tied_when"):
        found.append(value)
    return found


def family_seeds() -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    expressions: set[str] = set()
    configs: list[bytes] = []
    for path in sorted(FAMILIES.glob("*.json")):
        spec = json.loads(path.read_text())
        model_types = spec.get("match", {}).get("model_type", [])
        config = transformers_config(model_types[0]) if model_types else {}
        config_text = json.dumps(config, sort_keys=True, default=str).encode()
        configs.append(config_text)
        seeds[f"spec-{path.stem}"] = path.read_bytes() + b"\0" + config_text
        expressions.update(expressions_in(spec))
    for i, expression in enumerate(sorted(expressions)):
        seeds[f"expr-{i:03d}"] = expression.encode() + b"\0" + configs[i % len(configs)]
    seeds["expr-config-values"] = (b"ceil_div(big, 2) + sum(depths) ** 2 // -small\0"
                                   b'{"big": 4611686018427387904, "small": -7, '
                                   b'"depths": [1, 2, 3], "text_config": {"hidden_size": 8}}')
    return seeds


# DLPack 0.6 codes, and the 1.x ones hfport takes for types 0.6 lacks.
DL_CODES = {
    torch.float32: (2, 32), torch.float16: (2, 16), torch.float64: (2, 64),
    torch.bfloat16: (4, 16), torch.int8: (0, 8), torch.int64: (0, 64), torch.uint8: (1, 8),
    torch.bool: (6, 8), torch.float8_e4m3fn: (10, 8), torch.float8_e5m2: (12, 8),
}
KDL_CPU, KDL_CUDA, KDL_CUDA_HOST = 1, 2, 3
STRIDES_GIVEN, NULL_DATA_WHEN_EMPTY, FREE_REEXPORT = 1, 2, 4


def dlpack_description(shape: tuple[int, ...], strides: tuple[int, ...] | None, code: int,
                       bits: int, buffer: bytes, byte_offset: int = 0, lanes: int = 1,
                       device: int = KDL_CPU, flags: int = 0) -> bytes:
    """The bytes fuzz_from_dlpack.cpp reads; see the layout table in its header."""
    flags |= STRIDES_GIVEN if strides is not None else 0
    head = struct.pack("<BBBHBiBQH", len(shape) + 1, code, bits, lanes, device, 0, flags,
                       byte_offset, 0)
    body = struct.pack(f"<{len(shape)}q", *shape)
    if strides is not None:
        body += struct.pack(f"<{len(strides)}q", *strides)
    return head + body + buffer


def described(t: torch.Tensor, **kwargs: Any) -> bytes:
    """A torch view as its DLPack export describes it: the storage, the offset, the strides."""
    code, bits = DL_CODES[t.dtype]
    storage = bytes(t.untyped_storage())
    return dlpack_description(tuple(t.shape), tuple(t.stride()), code, bits, storage,
                              byte_offset=t.storage_offset() * t.element_size(), **kwargs)


def dlpack_seeds() -> dict[str, bytes]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    seeds = {
        "contiguous": described(base),
        "transposed": described(base.t()),
        "sliced-step": described(base[1:, ::2]),
        "row": described(base[2]),
        "broadcast": described(torch.arange(4.0).expand(3, 4)),
        "scalar": described(torch.tensor(2.5)),
        "six-dims": described(torch.arange(8, dtype=torch.int64).reshape(1, 2, 1, 2, 1, 2)),
        "zero-size": described(torch.zeros(0, 3, dtype=torch.int8)),
        "cuda-host": described(base[:2], device=KDL_CUDA_HOST),
        "cuda": described(base[:2], device=KDL_CUDA),
        "free-reexport": described(base, flags=FREE_REEXPORT),
        "compact-null-strides": dlpack_description((2, 3), None, 2, 32, bytes(base[:1].numpy())),
        "reversed": dlpack_description((3,), (-1,), 2, 32, bytes(12), byte_offset=8),
        "four-lanes": dlpack_description((2,), (1,), 2, 32, bytes(32), lanes=4),
        "complex": dlpack_description((2,), (1,), 5, 64, bytes(16)),
    }
    for dtype in DL_CODES:
        seeds[f"dtype-{str(dtype).removeprefix('torch.')}"] = described(
            torch.arange(4).to(dtype).reshape(2, 2))
    return seeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "build" / "fuzz" / "corpus")
    out = parser.parse_args().out
    write_seeds(out / "safetensors_header", safetensors_seeds())
    write_seeds(out / "sharded_index", index_seeds())
    write_seeds(out / "family_spec", family_seeds())
    write_seeds(out / "from_dlpack", dlpack_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
