"""`hfport convert-pickle`: a pickle checkpoint (.bin, .pt, .pth, .ckpt) rewritten as safetensors.

hfport never unpickles in its own process. The pickle is read by a child Python process, and only
through ``torch.load(path, weights_only=True, map_location="cpu", mmap=False)``: the restricted
unpickler builds tensors and plain containers and refuses every other global. A refusal is
reported with torch's message and never retried without the restriction. map_location="cpu"
reads checkpoints saved on a GPU on a machine without one.

The child writes the files with hfport's writer and answers with one JSON line on stdout; this
side checks the source (a file, a folder, or a sharded ``pytorch_model.bin.index.json``), starts the
child, copies config.json and the tokenizer files, and returns what was done as data.

Names that are one tensor (tied weights: same storage, offset, dtype, shape and strides) are
written once, under the first name in sorted order; safetensors refuses to write them twice. The
metadata key ``hfport.ties`` holds a JSON object {dropped name: kept name}: in a single file all
ties, in a shard those whose kept tensor it holds, in model.safetensors.index.json all of them.
Tensors that only overlap in storage (a slice, a transpose) are different tensors, each written
as its own contiguous copy.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfport._hfport import Tensor, write_safetensors
from hfport.errors import Error, PickleConversionError
from hfport.tensor import from_dlpack

TIES_KEY = "hfport.ties"
DEFAULT_MAX_SHARD_SIZE = "5GB"
PICKLE_WEIGHTS = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# Files beside the weights that a safetensors folder needs as much as the pickle folder did.
COMPANION_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
    "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "preprocessor_config.json",
)
# Decimal units as transformers' max_shard_size reads them ("5GB" = 5e9 bytes), binary ones too.
_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
# The child drops the caller's working directory from sys.path before importing anything, so a
# torch.py or safetensors.py in a downloaded model folder is never imported.
_CHILD_CODE = (
    "import sys\n"
    "if sys.path and sys.path[0] == '':\n"
    "    del sys.path[0]\n"
    "from hfport.pickle_convert import child_main\n"
    "sys.exit(child_main())\n"
)


@dataclass
class PickleConversion:
    """What `convert_pickle` read and wrote."""

    source: str
    containers: dict[str, str]  # pickle file -> where its state dict was ("the top level", ...)
    tensors_read: int
    tensors_written: int
    bytes_written: int
    ties: dict[str, str]  # dropped name -> kept name
    overlapping: list[str]  # names sharing storage with another tensor, written as copies
    files: list[str]  # written into the output folder, weights then index
    copied: list[str] = field(default_factory=list)  # companion files copied beside them


def parse_size(text: str) -> int:
    """Bytes from "5GB" (10^9), "500MiB" (2^20), "1000" ...: the --max-shard-size syntax."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _SIZE_UNITS or int(match.group(1)) == 0:
        raise PickleConversionError(
            f"max shard size {text!r} is not a positive size; expected a number of bytes with an "
            f"optional unit (KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of "
            f"1024), e.g. '5GB'")
    return int(match.group(1)) * _SIZE_UNITS[unit]


def _read_pickle_index(index: Path) -> list[dict[str, Any]]:
    """The shards of a sharded pickle checkpoint, each with the names the index puts in it."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad UTF-8 or JSON
        raise PickleConversionError(f"'{index}': cannot read the index: {e}") from e
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise PickleConversionError(
            f"'{index}' must be a JSON object with a non-empty \"weight_map\" object")
    folder = index.parent.resolve()
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise PickleConversionError(
                f"'{index}': tensor '{name}' maps to {json.dumps(shard)}; expected a file name")
        if Path(shard).is_absolute() or ".." in Path(shard).parts:
            raise PickleConversionError(
                f"'{index}': shard '{shard}' of tensor '{name}' must be a path inside the folder")
        shards.setdefault(shard, []).append(name)
    for shard in shards:
        path = (index.parent / shard).resolve()
        if not path.is_relative_to(folder):
            raise PickleConversionError(f"'{index}': shard '{shard}' leads out of the folder")
        if not path.is_file():
            raise PickleConversionError(f"'{index}': shard '{index.parent / shard}' is missing")
    return [{"path": str(index.parent / shard), "names": names} for shard, names in shards.items()]


def find_pickle_sources(src: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """The folder holding `src` and its pickle files: [{"path", "names"}], names None unless an
    index says which tensors each file holds."""
    path = Path(src)
    if path.is_dir():
        if (path / PICKLE_INDEX).is_file():
            return path, _read_pickle_index(path / PICKLE_INDEX)
        if (path / PICKLE_WEIGHTS).is_file():
            return path, [{"path": str(path / PICKLE_WEIGHTS), "names": None}]
        found = sorted(p.name for p in path.iterdir()
                       if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl"))
        raise PickleConversionError(
            f"'{path}' holds neither {PICKLE_WEIGHTS} nor {PICKLE_INDEX}"
            + (f"; name one of its pickle files instead: {', '.join(found)}" if found else ""))
    if path.is_file():
        if path.name.endswith(".index.json"):
            return path.parent, _read_pickle_index(path)
        return path.parent, [{"path": str(path), "names": None}]
    raise PickleConversionError(f"'{path}' does not exist")


def _prepare_output(dst: Path) -> None:
    if dst.exists() and not dst.is_dir():
        raise PickleConversionError(f"the output '{dst}' exists and is not a folder")
    if dst.is_dir():
        present = sorted(p.name for p in dst.iterdir()
                         if p.name.endswith(".safetensors") or p.name == SAFETENSORS_INDEX)
        if present:
            raise PickleConversionError(
                f"the output folder '{dst}' already holds {', '.join(present)}; "
                f"choose a folder without safetensors files")
    dst.mkdir(parents=True, exist_ok=True)


def _run_child(request: dict[str, Any]) -> dict[str, Any]:
    child = subprocess.run([sys.executable, "-c", _CHILD_CODE], input=json.dumps(request),
                           capture_output=True, text=True, check=False)
    lines = child.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or child.returncode not in (0, 1):
        output = child.stderr.strip() or child.stdout.strip()
        raise PickleConversionError(f"the conversion process for '{request['source']}' failed "
                                    f"(exit {child.returncode}): {output[-2000:]}")
    if "error" in answer:
        raise PickleConversionError(answer["error"])
    return answer


def convert_pickle(src: str | Path, dst: str | Path,
                   max_shard_size: str = DEFAULT_MAX_SHARD_SIZE) -> PickleConversion:
    """Rewrite the pickle checkpoint `src` as safetensors in the folder `dst` (see the module
    docstring). Raises PickleConversionError, with torch's message when it refuses the pickle."""
    limit = parse_size(max_shard_size)
    folder, sources = find_pickle_sources(src)
    out = Path(dst)
    created = not out.exists()
    _prepare_output(out)
    try:
        answer = _run_child({"sources": sources, "out": str(out), "max_shard_bytes": limit,
                             "source": str(src)})
    except PickleConversionError:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    done = PickleConversion(source=str(src), **answer)
    for name in COMPANION_FILES:
        there = folder / name
        if there.is_file() and not (out / name).exists():
            shutil.copyfile(there, out / name)
            done.copied.append(name)
    return done


# --- the child process: the only place that calls torch.load ------------------------------------


class _Refused(Exception):
    """A pickle the child will not convert; the message names the file and what it found."""


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"dict with {len(value)} {'entry' if len(value) == 1 else 'entries'}"
    return type(value).__name__


def _state_dict(torch: Any, loaded: Any, path: str) -> tuple[str, dict[str, Any]]:
    """The name -> tensor mapping in `loaded`, and where it was found."""
    def is_state_dict(value: Any) -> bool:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())

    if is_state_dict(loaded) and loaded:
        return "the top level", loaded
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if key in loaded and is_state_dict(loaded[key]) and loaded[key]:
                return f"the '{key}' entry", loaded[key]
        entries = ", ".join(f"{k!r}: {'tensor' if isinstance(v, torch.Tensor) else _describe(v)}"
                            for k, v in list(loaded.items())[:8])
        found = f"{_describe(loaded)} ({entries}{', ...' if len(loaded) > 8 else ''})"
    else:
        found = _describe(loaded)
    raise _Refused(f"'{path}' holds a {found}; expected a state dict (names -> tensors), or a "
                   f"dict whose 'state_dict' or 'model' entry is one")


def _ties_and_overlaps(state: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Names that are the same tensor as a name sorted before them (dropped -> kept), and the
    names whose storage holds other, different tensors too (slices, transposes)."""
    same: dict[tuple[Any, ...], list[str]] = {}
    by_storage: dict[int, set[tuple[Any, ...]]] = {}
    names_of_storage: dict[int, list[str]] = {}
    for name in sorted(state):
        t = state[name]
        if t.numel() == 0:  # empty tensors may all report storage address 0
            continue
        storage = t.untyped_storage().data_ptr()
        key = (storage, t.storage_offset(), t.dtype, tuple(t.shape), t.stride())
        same.setdefault(key, []).append(name)
        by_storage.setdefault(storage, set()).add(key)
        names_of_storage.setdefault(storage, []).append(name)
    ties = {dropped: names[0] for names in same.values() for dropped in names[1:]}
    overlapping = [n for s, keys in by_storage.items() if len(keys) > 1
                   for n in names_of_storage[s] if n not in ties]
    return ties, overlapping


class _ShardWriter:
    """Tensors in order into files of at most `limit` bytes of data (a larger tensor alone), under
    temporary names until the count is known."""

    def __init__(self, out: Path, limit: int, source: str):
        self.out, self.limit, self.source = out, limit, source
        self.pending: list[tuple[str, Tensor]] = []
        self.pending_bytes = 0
        self.pending_ties: dict[str, str] = {}
        self.written: list[tuple[Path, list[str]]] = []
        self.ties: dict[str, str] = {}
        self.total = 0

    def add(self, name: str, tensor: Tensor, ties: dict[str, str]) -> None:
        nbytes = tensor.nbytes
        if self.pending and self.pending_bytes + nbytes > self.limit:
            self.flush()
        self.pending.append((name, tensor))
        self.pending_bytes += nbytes
        self.pending_ties.update(ties)
        self.total += nbytes

    def flush(self) -> None:
        path = self.out / f"model-{len(self.written) + 1:05d}.partial"
        metadata = {"format": "pt", "hfport.source": self.source}
        if self.pending_ties:
            metadata[TIES_KEY] = json.dumps(self.pending_ties, sort_keys=True)
        write_safetensors(str(path), self.pending, metadata)
        self.written.append((path, [n for n, _ in self.pending]))
        self.ties.update(self.pending_ties)
        self.pending, self.pending_bytes, self.pending_ties = [], 0, {}

    def finish(self) -> list[str]:
        """Rename the files to their final names and write the index when there are several."""
        if self.pending:
            self.flush()
        count = len(self.written)
        if count == 1:
            self.written[0][0].rename(self.out / "model.safetensors")
            return ["model.safetensors"]
        weight_map: dict[str, str] = {}
        for i, (path, names) in enumerate(self.written, start=1):
            final = f"model-{i:05d}-of-{count:05d}.safetensors"
            path.rename(self.out / final)
            weight_map.update(dict.fromkeys(names, final))
        metadata: dict[str, Any] = {"total_size": self.total, "hfport.source": self.source}
        if self.ties:
            metadata[TIES_KEY] = json.dumps(self.ties, sort_keys=True)
        index = {"metadata": metadata, "weight_map": dict(sorted(weight_map.items()))}
        (self.out / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        return list(dict.fromkeys(weight_map.values())) + [SAFETENSORS_INDEX]

    def discard(self) -> None:
        for path, _ in self.written:
            path.unlink(missing_ok=True)


def _load(torch: Any, path: str) -> Any:
    try:
        return torch.load(path, weights_only=True, map_location="cpu", mmap=False)
    except Exception as e:  # any failure to read untrusted bytes is reported, never retried
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        if "Weights only load failed" in message or type(e).__name__ == "UnpicklingError":
            raise _Refused(f"'{path}': torch.load(weights_only=True) refused it, and hfport does "
                           f"not retry without weights_only. torch says: {message}") from e
        raise _Refused(f"'{path}': torch.load(weights_only=True) failed: "
                       f"{type(e).__name__}: {message}") from e


def _check_dense(torch: Any, state: dict[str, Any], path: str) -> None:
    for name, tensor in state.items():
        if tensor.layout != torch.strided or tensor.is_quantized:
            kind = "quantized" if tensor.is_quantized else str(tensor.layout)
            raise _Refused(f"'{path}': tensor '{name}' is {kind}; only dense tensors have a "
                           f"safetensors form")


def _as_hfport(tensor: Any, name: str, path: str) -> Tensor:
    """A contiguous copy of a view, detached from autograd, as the writer takes it."""
    try:
        return from_dlpack(tensor.detach().contiguous())
    except (Error, BufferError) as e:
        raise _Refused(f"'{path}': tensor '{name}' ({tensor.dtype}) has no safetensors form: "
                       f"{e}") from e


def _convert(request: dict[str, Any]) -> dict[str, Any]:
    try:
        import torch
    except ImportError as e:
        raise _Refused("converting a pickle checkpoint needs torch (pip install torch)") from e

    writer = _ShardWriter(Path(request["out"]), request["max_shard_bytes"], request["source"])
    containers: dict[str, str] = {}
    ties: dict[str, str] = {}
    overlapping: list[str] = []
    read = 0
    seen: set[str] = set()
    try:
        for source in request["sources"]:
            path = source["path"]
            where, state = _state_dict(torch, _load(torch, path), path)
            containers[path] = where
            if source["names"] is not None and set(source["names"]) != set(state):
                missing = sorted(set(source["names"]) - set(state))
                extra = sorted(set(state) - set(source["names"]))
                raise _Refused(f"'{path}' does not hold what the index lists: missing "
                               f"{missing[:5] or 'none'}, not listed {extra[:5] or 'none'}")
            twice = sorted(seen & set(state))
            if twice:
                raise _Refused(f"'{path}' holds {twice[:5]}, already read from another file")
            seen.update(state)
            _check_dense(torch, state, path)
            file_ties, file_overlapping = _ties_and_overlaps(state)
            ties.update(file_ties)
            overlapping += file_overlapping
            read += len(state)
            kept_ties: dict[str, dict[str, str]] = {}
            for dropped, kept in file_ties.items():
                kept_ties.setdefault(kept, {})[dropped] = kept
            for name, tensor in state.items():
                if name in file_ties:
                    continue
                writer.add(name, _as_hfport(tensor, name, path), kept_ties.get(name, {}))
            del state
        files = writer.finish()
    except (_Refused, Error, BufferError, OSError) as e:
        writer.discard()
        if isinstance(e, _Refused):
            raise
        raise _Refused(f"writing '{request['out']}' failed: {type(e).__name__}: {e}") from e
    return {"containers": containers, "tensors_read": read,
            "tensors_written": read - len(ties), "bytes_written": writer.total, "ties": ties,
            "overlapping": overlapping, "files": files}


def child_main() -> int:
    """Entry of the child process: a JSON request on stdin, one JSON line on stdout."""
    try:
        answer = _convert(json.loads(sys.stdin.read()))
    except _Refused as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(answer))
    return 0
