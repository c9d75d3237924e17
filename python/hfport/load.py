"""hfport.load: a checkpoint, mapped by a family spec onto native names, strictly.

>>> state, report = hfport.load("llama_dir")            # family from config.json
>>> print(report)                                        # the compact table
>>> state, report = hfport.load("dir", spec="mamba", dtype="float32", strict=False)
>>> state, report = hfport.load("llama_dir", device="cuda", dtype="bfloat16")  # on the GPU

The planning, the ops and the report are C++ (csrc/mapping); this module turns a spec given as a
name, a dict or a file into JSON text, shows a progress bar on large loads, and wraps the report.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from hfport import _hfport
from hfport._hfport import Tensor
from hfport.dtypes import optional_dtype_name
from hfport.errors import SpecError

SpecArg = str | os.PathLike[str] | Mapping[str, Any] | None

# Loads above this many bytes show a progress bar when stderr is a terminal.
_PROGRESS_BYTES = 512 << 20


class LoadReport:
    """What a load found: loaded, tied, optional-absent, missing, mismatched, unexpected and
    ignored names, with per-tensor statistics. ``str(report)`` is the compact table."""

    def __init__(self, report_json: str, text: str, error_message: str) -> None:
        self._data: dict[str, Any] = json.loads(report_json)
        self._text = text
        self._error = error_message

    @property
    def family(self) -> str:
        return str(self._data["family"])

    @property
    def ok(self) -> bool:
        """Nothing missing, mismatched or unexpected."""
        return bool(self._data["ok"])

    @property
    def params(self) -> list[dict[str, Any]]:
        """One dict per native parameter: name, status, sources, ops, expected, got, fields, ..."""
        return cast("list[dict[str, Any]]", self._data["params"])

    def _names(self, status: str) -> list[str]:
        return [p["name"] for p in self.params if p["status"] == status]

    @property
    def loaded(self) -> list[str]:
        return self._names("loaded")

    @property
    def tied(self) -> list[str]:
        return self._names("tied")

    @property
    def absent(self) -> list[str]:
        """Optional parameters the checkpoint does not have."""
        return self._names("absent")

    @property
    def missing(self) -> list[dict[str, Any]]:
        """name, missing_sources and suggestions (closest checkpoint names) of each missing one."""
        return [p for p in self.params if p["status"] == "missing"]

    @property
    def mismatched(self) -> list[dict[str, Any]]:
        """name, expected, got, fields (the config fields behind `expected`) and detail."""
        return [p for p in self.params if p["status"] == "mismatched"]

    @property
    def unexpected(self) -> list[str]:
        return cast("list[str]", self._data["unexpected"])

    @property
    def ignored(self) -> list[dict[str, str]]:
        return cast("list[dict[str, str]]", self._data["ignored"])

    @property
    def head(self) -> str:
        """The task head loaded ("masked_lm", "sequence_classification", ...), "" for none."""
        return str(self._data["head"])

    @property
    def head_tensors(self) -> list[str]:
        """Checkpoint tensors of a head that was not loaded (see head_note for why)."""
        return cast("list[str]", self._data["head_tensors"])

    @property
    def head_note(self) -> str:
        return str(self._data["head_note"])

    @property
    def warnings(self) -> list[str]:
        """A forced family that config.json contradicts, said in words."""
        return cast("list[str]", self._data["warnings"])

    @property
    def counts(self) -> dict[str, int]:
        return cast("dict[str, int]", self._data["counts"])

    @property
    def error_message(self) -> str:
        """The message a strict load raises with ("" when the report is ok)."""
        return self._error

    def to_dict(self) -> dict[str, Any]:
        return cast("dict[str, Any]", json.loads(json.dumps(self._data)))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self._data, indent=indent)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        c = self.counts
        return (f"LoadReport(family={self.family!r}, head={self.head!r}, loaded={c['loaded']}, "
                f"tied={c['tied']}, "
                f"missing={c['missing']}, mismatched={c['mismatched']}, "
                f"unexpected={c['unexpected']}, ignored={c['ignored']})")


def families() -> list[str]:
    """The built-in family names."""
    return list(_hfport._builtin_families())


def family_spec(name: str) -> dict[str, Any]:
    """A built-in family spec, as data (the JSON file in csrc/mapping/families)."""
    return cast("dict[str, Any]", json.loads(_hfport._family_spec_json(name)))


_HEAD_MODES = ("auto", "require", "none")


def _spec_text(spec: SpecArg, family: str | None = None) -> tuple[str | None, str]:
    """(JSON text, origin for messages) for a spec given as None, a name, a dict or a file, or
    for a built-in family forced by name."""
    if family is not None:
        if spec is not None:
            raise TypeError("pass spec= or family=, not both (family= names a built-in family; "
                            "spec= also takes a dict or a JSON file)")
        if family not in _hfport._builtin_families():
            raise SpecError(f"family={family!r} is not a built-in family "
                            f"({', '.join(families())})")
        return _hfport._family_spec_json(family), f"built-in family '{family}'"
    if spec is None:
        return None, ""
    if isinstance(spec, Mapping):
        return json.dumps(spec), f"spec '{spec.get('family', '?')}' (a dict)"
    text = os.fspath(spec)
    if text in _hfport._builtin_families():
        return _hfport._family_spec_json(text), f"built-in family '{text}'"
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        try:
            return path.read_text(encoding="utf-8"), f"spec file {path}"
        except OSError as e:
            raise SpecError(f"cannot read spec file {path}: {e.strerror}") from e
    raise SpecError(f"spec {text!r} is neither a built-in family ({', '.join(families())}) "
                    "nor a JSON file")


def _progress_bar(path: str, progress: bool | None
                  ) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None, lambda: None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    bar = Progress("[bold]loading", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if total < _PROGRESS_BYTES:
            return
        if task is None:
            bar.start()
            task = bar.add_task(path, total=total)
        # A load to a GPU reports a second run (the upload) with its own total.
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def _heads_mode(heads: str) -> str:
    if heads not in _HEAD_MODES:
        raise ValueError(f"heads must be one of {', '.join(map(repr, _HEAD_MODES))}, got {heads!r}")
    return heads


def _warn(report: LoadReport) -> LoadReport:
    for message in report.warnings:
        warnings.warn(message, UserWarning, stacklevel=3)
    return report


def load(path: str | os.PathLike[str], spec: SpecArg = None, dtype: Any = None,
         device: str = "cpu", strict: bool = True, stats: bool = True,
         progress: bool | None = None, *, family: str | None = None, heads: str = "auto",
         staging_bytes: int | None = None,
         staging_buffers: int | None = None) -> tuple[dict[str, Tensor], LoadReport]:
    """Load a checkpoint onto native names. Returns ``(state, report)``: ``state`` maps native
    names to hfport.Tensor (zero-copy views where the op leaves the bytes alone).

    spec: None (the built-in family config.json's model_type selects), a built-in family name, a
    dict, or a JSON file. family: a built-in family name, forced (the same as spec=name; a warning
    says so when config.json names another family). dtype: cast every floating-point parameter
    ("float32", "bf16", torch.bfloat16, ...).
    device: "cpu", "cuda" or "cuda:N" (a torch.device works too). On a GPU the state is made on
    the host as for the CPU, then uploaded in one pass through pinned staging buffers
    (staging_buffers x staging_bytes, default 8 x 32 MiB) with copies overlapped on streams; a
    dtype cast runs on the GPU after the upload, and all tensors share one device allocation.
    The device is checked before the checkpoint is opened. The report is computed on the host
    (statistics of the values before a device cast). strict: raise hfport.errors.LoadError
    listing every problem, before anything is uploaded; False returns the report and leaves
    missing parameters out. stats: per-tensor statistics and fresh-init flags. progress: a bar
    for large loads (None: when stderr is a terminal). heads: what to do with a task head
    (BertForMaskedLM's cls.*, LlamaForSequenceClassification's score): "auto" loads the head
    config.json's `architectures` select and reports the tensors of a head the spec does not
    know in their own section (report.head_tensors), "require" makes those an error of a strict
    load, "none" loads the base model alone.
    """
    spec_text, origin = _spec_text(spec, family)
    update, stop = _progress_bar(os.fspath(path), progress)
    try:
        state, report = _hfport._load(os.fspath(path), spec_text, origin,
                                      optional_dtype_name(dtype), strict, stats, update,
                                      str(device), staging_bytes, staging_buffers,
                                      _heads_mode(heads))
    finally:
        stop()
    return state, _warn(LoadReport(*report))


def map_checkpoint(path: str | os.PathLike[str], spec: SpecArg = None, *,
                   family: str | None = None,
                   heads: str = "auto") -> LoadReport:
    """The load report from names and shapes alone: no tensor data is read. spec, family and
    heads as for load."""
    spec_text, origin = _spec_text(spec, family)
    return _warn(LoadReport(*_hfport._map(os.fspath(path), spec_text, origin, _heads_mode(heads))))
