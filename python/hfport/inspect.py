"""`hfport inspect`: what a checkpoint holds, as data (for --json) and as rich tables."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

from hfport._hfport import Checkpoint, tensor_stats

# config.json fields worth a line in the summary, in display order.
CONFIG_FIELDS = (
    "model_type", "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size",
    "max_position_embeddings", "state_size", "d_model", "n_layer", "n_embd", "n_head",
    "tie_word_embeddings", "torch_dtype", "dtype",
)


def natural_key(name: str) -> list[Any]:
    """Sort key that puts layers.2 before layers.10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def inspect_checkpoint(
    path: str, stats: bool = False, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Everything `hfport inspect` shows, as plain data. With stats=True, per-tensor statistics
    are computed in C++ on all threads; progress(done) is called as tensors finish."""
    ck = Checkpoint.open(str(path))
    names = sorted(ck.keys(), key=natural_key)
    tensors = []
    by_dtype: dict[str, int] = {}
    parameters = 0
    for name in names:
        info = ck.info(name)
        numel = math.prod(info["shape"])
        parameters += numel
        by_dtype[info["dtype"]] = by_dtype.get(info["dtype"], 0) + info["nbytes"]
        tensors.append({
            "name": name,
            "dtype": info["dtype"],
            "shape": list(info["shape"]),
            "nbytes": info["nbytes"],
            "shard": os.path.basename(info["shard"]),
        })
    if stats:
        results = tensor_stats([ck[name] for name in names], progress)
        for row, s in zip(tensors, results):
            row["stats"] = {
                "mean": _finite_or_none(s["mean"]), "std": _finite_or_none(s["std"]),
                "min": _finite_or_none(s["min"]), "max": _finite_or_none(s["max"]),
                "nan": s["nan"], "inf": s["inf"],
            }
    config = ck.config or {}
    return {
        "path": str(path),
        "files": [os.path.basename(p) for p in ck.shards],
        "sharded": ck.is_sharded,
        "metadata": ck.metadata(),
        "config": {k: config[k] for k in CONFIG_FIELDS if k in config},
        "totals": {
            "tensors": len(names),
            "parameters": parameters,
            "bytes": sum(by_dtype.values()),
            "bytes_by_dtype": by_dtype,
        },
        "tensors": tensors,
    }


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size} B"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render(report: dict[str, Any], console: Any) -> None:
    """Print an inspect report: the tensor table (terminal.print_table: names folded at dots,
    numbers never cut), then the totals."""
    from rich.table import Table

    from hfport.terminal import print_table

    with_stats = bool(report["tensors"]) and "stats" in report["tensors"][0]
    sharded = len(report["files"]) > 1
    columns = [("name", "left"), ("dtype", "left"), ("shape", "left"), ("bytes", "right")]
    if sharded:
        columns.append(("shard", "left"))
    if with_stats:
        columns += [(c, "right") for c in ("mean", "std", "min", "max", "nan/inf")]
    rows = []
    for row in report["tensors"]:
        cells = [row["name"], row["dtype"], str(row["shape"]), human_bytes(row["nbytes"])]
        if sharded:
            cells.append(row["shard"])
        if with_stats:
            s = row["stats"]
            bad = s["nan"] + s["inf"]
            cells += [_fmt(s["mean"]), _fmt(s["std"]), _fmt(s["min"]), _fmt(s["max"]),
                      f"[red]{s['nan']}/{s['inf']}[/red]" if bad else "0/0"]
        rows.append(cells)
    print_table(console, columns, rows, title=str(report["path"]))

    totals = report["totals"]
    summary = Table(show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("files", ", ".join(report["files"]))
    summary.add_row("tensors", str(totals["tensors"]))
    summary.add_row("parameters", f"{totals['parameters']:,}")
    summary.add_row("bytes", human_bytes(totals["bytes"]) + "  (" + ", ".join(
        f"{k} {human_bytes(v)}" for k, v in sorted(totals["bytes_by_dtype"].items())) + ")")
    for key, value in report["metadata"].items():
        summary.add_row(f"metadata.{key}", str(value))
    for key, value in report["config"].items():
        summary.add_row(f"config.{key}", str(value))
    console.print(summary)
