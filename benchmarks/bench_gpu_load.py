"""Checkpoint to GPU: hfport against safetensors loading the same file onto the same GPU.

Rows (ratio = reference time / hfport time, both measured in this run, on this GPU, interleaved,
median of --repeats after a warm-up round):

1. hfport.load(dir, device="cuda", stats=False): the strict loader (LLaMA family: q/k/v and
   gate/up concatenated on the host, then one staged upload) against
   safetensors.torch.load_file(file, device="cuda");
2. the same against safe_open(file, framework="pt", device="cuda") + get_tensor for every name
   (BENCHMARKS.md's reference for "checkpoint to GPU", target >= 1.0x on 8 GB);
3-4. hfport's raw upload of every tensor under its own name (Checkpoint.load_all("cuda")) against
   the same two references;
5. context, no target: every tensor cast bf16 -> f32 on the GPU by hfport.load(dtype="float32")
   against load_file(device="cuda") then .float() on the GPU.

Every timed call ends with torch.cuda.synchronize(), so a time covers the data being on the GPU.
Between calls torch's cached blocks are released (torch.cuda.empty_cache), so each torch load
allocates its memory as a first load in a process does; hfport allocates with cudaMalloc each
time. The page cache is NOT dropped: the file is read once before timing and every figure is a
warm-cache figure (the table says so). Correctness first: hfport's tensors are compared with
load_file's, bit for bit, before any timing.

The checkpoint is LLaMA-shaped bf16 (with config.json), about --gb GB, written to a temporary
folder (under --dir, else the system's) that is deleted at the end. Without a GPU (or a CUDA build
of hfport, or CUDA torch) the script says so and exits 0.

    python benchmarks/bench_gpu_load.py                  # 8 GB
    python benchmarks/bench_gpu_load.py --gb 1 --repeats 3
    python benchmarks/bench_gpu_load.py --staging-bytes 67108864 --staging-buffers 4
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_loader  # its LlamaShape's tensor names, its section markers
import hfport
import torch
from gpu_timing import gpu_line, no_gpu_message, no_gpu_reason
from safetensors import safe_open
from safetensors.torch import load_file

BLOCK_BYTES = 64 << 20  # the random block tiled through the file
CAST_CASE = ("context: bf16 -> f32 on the GPU, hfport.load(dtype='float32') vs load_file + "
             ".float()")


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    layers: int

    def tensors(self) -> list[tuple[str, list[int]]]:
        """(name, shape) of every tensor, as bench_loader's checkpoints name and shape them."""
        kv_dim = self.kv_heads * (self.hidden // self.heads)
        return bench_loader.LlamaShape(self.hidden, self.intermediate, kv_dim, self.vocab,
                                       self.layers).tensors()

    def config(self) -> dict[str, Any]:
        return {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                "vocab_size": self.vocab, "hidden_size": self.hidden,
                "intermediate_size": self.intermediate, "num_hidden_layers": self.layers,
                "num_attention_heads": self.heads, "num_key_value_heads": self.kv_heads,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def shape_for(gb: float) -> LlamaShape:
    """LLaMA-3-8B's layer dims (smaller ones under 2 GB), with as many layers as reach `gb`."""
    if gb >= 2:
        base = LlamaShape(hidden=4096, intermediate=14336, heads=32, kv_heads=8, vocab=32000,
                          layers=0)
    else:
        base = LlamaShape(hidden=1024, intermediate=3584, heads=16, kv_heads=4, vocab=32000,
                          layers=0)
    h, i, kv = base.hidden, base.intermediate, base.kv_heads * (base.hidden // base.heads)
    per_layer = 2 * (2 * h * h + 2 * kv * h + 3 * i * h + 2 * h)
    fixed = 2 * (2 * base.vocab * h + h)
    layers = max(1, round((gb * 1e9 - fixed) / per_layer))
    return LlamaShape(base.hidden, base.intermediate, base.heads, base.kv_heads, base.vocab, layers)


def write_checkpoint(folder: Path, shape: LlamaShape) -> Path:
    """model.safetensors (bf16: a random block tiled through the data) and config.json."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dims in shape.tensors():
        nbytes = 2 * int(torch.Size(dims).numel())
        header[name] = {"dtype": "BF16", "shape": dims, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    generator = torch.Generator().manual_seed(0)
    block = (torch.randn(BLOCK_BYTES // 2, generator=generator) * 0.02).to(torch.bfloat16)
    block_bytes = block.view(torch.uint8).numpy().tobytes()
    path = folder / "model.safetensors"
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        left = offset
        while left > 0:
            f.write(block_bytes[:min(left, len(block_bytes))])
            left -= min(left, len(block_bytes))
        f.flush()
        os.fsync(f.fileno())
    (folder / "config.json").write_text(json.dumps(shape.config()))
    return path


# ---------------------------------------------------------------------------------------------
# What is timed


def hfport_load(folder: Path, staging: dict[str, int], dtype: str | None = None) -> dict:
    state, _ = hfport.load(folder, device="cuda", dtype=dtype, stats=False, progress=False,
                           **staging)
    return state


def hfport_raw(path: Path, staging: dict[str, int]) -> dict:
    return hfport.open(path).load_all("cuda", **staging)


def safetensors_load_file(path: Path) -> dict:
    return load_file(path, device="cuda")


def safetensors_safe_open(path: Path) -> dict:
    with safe_open(path, framework="pt", device="cuda") as f:
        return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (not iterable)


def load_file_float(path: Path) -> dict:
    return {name: t.float() for name, t in load_file(path, device="cuda").items()}


def timed_ms(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median ms of each function over `repeats` interleaved rounds after a warm-up round; each
    call ends with a device synchronize, and its result is freed outside the clock."""
    times: dict[str, list[float]] = {label: [] for label in fns}
    for round_ in range(1 + repeats):
        for label, fn in fns.items():
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.synchronize()
            start = time.perf_counter()
            result = fn()
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            del result
            if round_ > 0:
                times[label].append(elapsed)
    return {label: statistics.median(t) * 1e3 for label, t in times.items()}


def check_same(path: Path, folder: Path, staging: dict[str, int]) -> None:
    reference = load_file(path, device="cuda")
    raw = hfport_raw(path, staging)
    if sorted(raw) != sorted(reference):
        raise AssertionError("hfport and safetensors list different tensors")
    for name, t in raw.items():
        if not torch.equal(torch.from_dlpack(t), reference[name]):
            raise AssertionError(f"tensor '{name}' differs between hfport and safetensors")
    del raw
    state = hfport_load(folder, staging)
    fused = torch.cat([reference[f"model.layers.0.self_attn.{p}_proj.weight"] for p in "qkv"])
    if not torch.equal(torch.from_dlpack(state["blk.0.attn_qkv.weight"]), fused):
        raise AssertionError("hfport.load's fused qkv differs from torch.cat of safetensors'")
    del state, fused
    cast = hfport_load(folder, staging, "float32")
    name = "blk.0.ffn_down.weight"
    if not torch.equal(torch.from_dlpack(cast[name]),
                       reference["model.layers.0.mlp.down_proj.weight"].float()):
        raise AssertionError("hfport's bf16 -> f32 cast on the GPU differs from torch's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=8.0, help="checkpoint size in GB (default 8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary folder goes")
    parser.add_argument("--staging-bytes", type=int, default=None)
    parser.add_argument("--staging-buffers", type=int, default=None)
    parser.add_argument("--write", type=Path, default=None,
                        help="also write the table as a section of this markdown file")
    args = parser.parse_args(argv)

    reason = no_gpu_reason()
    if reason is not None:
        print(no_gpu_message("bench_gpu_load", reason))
        return 0
    staging = {key: value for key, value in [("staging_bytes", args.staging_bytes),
                                             ("staging_buffers", args.staging_buffers)]
               if value is not None}

    with tempfile.TemporaryDirectory(prefix="hfport_gpu_load_", dir=args.dir) as tmp:
        folder = Path(tmp)
        shape = shape_for(args.gb)
        path = write_checkpoint(folder, shape)
        size = path.stat().st_size
        # check_same also reads the whole file: the page cache is warm from here on.
        check_same(path, folder, staging)
        gc.collect()
        refs = {"load_file": lambda: safetensors_load_file(path),
                "safe_open": lambda: safetensors_safe_open(path)}
        ms = timed_ms({"hfport.load": lambda: hfport_load(folder, staging),
                       "hfport raw": lambda: hfport_raw(path, staging), **refs,
                       "hfport.load f32": lambda: hfport_load(folder, staging, "float32"),
                       "load_file + .float()": lambda: load_file_float(path)}, args.repeats)

    ring = ", ".join(f"{k}={v}" for k, v in staging.items()) or "default staging (8 x 32 MiB)"
    lines = [(f"## Checkpoint to GPU, {size / 1e9:.2f} GB bf16, {len(shape.tensors())} tensors "
             f"(LLaMA-shaped, {shape.layers} layers); warm page cache (nothing dropped)"),
             "",
             (f"GPU: {gpu_line()}, {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')}; "
             f"hfport {ring}; median of {args.repeats} after a warm-up. Command: `python benchmarks/bench_gpu_load.py`."),
             "",
             "| case | hfport ms | reference ms | ratio | hfport GB/s | target |",
             "| --- | --- | --- | --- | --- | --- |"]
    rows = [("hfport.load(device='cuda', stats=False) vs load_file(device='cuda')",
             "hfport.load", "load_file", "-"),
            ("hfport.load(device='cuda', stats=False) vs safe_open(device='cuda')",
             "hfport.load", "safe_open", ">= 1.0x"),
            ("raw upload, Checkpoint.load_all('cuda') vs load_file(device='cuda')",
             "hfport raw", "load_file", "-"),
            ("raw upload, Checkpoint.load_all('cuda') vs safe_open(device='cuda')",
             "hfport raw", "safe_open", ">= 1.0x"),
            (CAST_CASE, "hfport.load f32", "load_file + .float()", "none")]
    for case, ours, ref, target in rows:
        lines.append(f"| {case} | {ms[ours]:.1f} | {ms[ref]:.1f} | {ms[ref] / ms[ours]:.2f}x | "
                     f"{size / ms[ours] / 1e6:.1f} | {target} |")
    print("\n".join(lines))
    if args.write is not None:
        bench_loader.write_section(args.write, "\n".join(lines) + "\n", "bench_gpu_load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
