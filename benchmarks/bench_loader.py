"""Loader benchmark (CPU): hfport's mmap safetensors reader against the safetensors package.

Every row is a ratio against a reference measured in the same run, on the same file, after a
warm-up, as the median of several repeats (BENCHMARKS.md, "Loader (CPU)"). hfport and its
reference are timed in alternation, so load from other processes on a shared machine falls on both.

1. (table rows 1-2) open a checkpoint and list its tensors, on a ~1 GB file and an ~8 GB one
   holding the same tensor names (the big one is sparse: header written, then truncated to full
   size; listing reads only the header), against safetensors.safe_open(path, "pt").keys();
2. (row 3) every tensor as a torch tensor, no dtype change, against safetensors.torch.load_file;
   hfport's tensors are checked to lie inside the file's mapping (0 bytes copied);
3. (rows 4-6) every tensor cast bf16 -> f32, against load_file then .float(), and against a
   same-run memcpy moving the same bytes (2 read + 4 written per element), between pre-faulted
   buffers (the target) and into fresh ones (context: what first-touch page faults cost).

The checkpoints have a LLaMA state dict's names and shapes; the 1 GB one holds random bf16 data.
They live in a temporary folder (under --dir, else the system's) that is deleted at the end.

    python benchmarks/bench_loader.py                          # print the table
    python benchmarks/bench_loader.py --write docs/benchmarks.md
    python benchmarks/bench_loader.py --small                  # ~64 MB files, seconds (tests)
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import mmap
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hfport
import numpy as np
import safetensors
import torch
from safetensors import safe_open
from safetensors.torch import load_file

BEGIN_MARKER = "<!-- bench_loader:begin -->"
END_MARKER = "<!-- bench_loader:end -->"
DOC_INTRO = (
    "# hfport benchmarks\n\n"
    "Each section below is written by one script under `benchmarks/` (`make bench` runs them) "
    "between its own markers. Every figure is a ratio against a reference measured in the same "
    "run, after warm-up, as the median of several repeats; `BENCHMARKS.md` lists the cases and "
    "targets.\n"
)
MET_TEXT = {True: "yes", False: "**no**", None: "-"}
OPEN_INNER = 20  # opens timed together per repeat: one open takes well under a millisecond
SIZE_INDEPENDENT_TOLERANCE = 1.25  # hfport's open on the 8 GB file within 1.25x of the 1 GB one


@dataclass(frozen=True)
class LlamaShape:
    """The dims that fix a LLaMA state dict's names and shapes (bf16, untied lm_head)."""

    hidden: int
    intermediate: int
    kv_dim: int  # num_key_value_heads * head_dim
    vocab: int
    layers: int

    def tensors(self) -> list[tuple[str, list[int]]]:
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        specs = [("model.embed_tokens.weight", [self.vocab, h])]
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            specs += [
                (p + "input_layernorm.weight", [h]),
                (p + "self_attn.q_proj.weight", [h, h]),
                (p + "self_attn.k_proj.weight", [kv, h]),
                (p + "self_attn.v_proj.weight", [kv, h]),
                (p + "self_attn.o_proj.weight", [h, h]),
                (p + "post_attention_layernorm.weight", [h]),
                (p + "mlp.gate_proj.weight", [i, h]),
                (p + "mlp.up_proj.weight", [i, h]),
                (p + "mlp.down_proj.weight", [h, i]),
            ]
        return specs + [("model.norm.weight", [h]), ("lm_head.weight", [self.vocab, h])]


@dataclass(frozen=True)
class Mode:
    name: str
    flag: str
    real_file: LlamaShape  # random data; rows 1 and 3-6
    sparse_file: LlamaShape  # a hole after the header; row 2 only. Same names as real_file.
    repeats: int
    memcpy_bytes: int


# Both files of a mode have 9 layers, so they hold the same 84 names and differ only in size.
FULL = Mode(
    name="full", flag="",
    real_file=LlamaShape(hidden=2048, intermediate=5632, kv_dim=256, vocab=32000, layers=9),
    sparse_file=LlamaShape(hidden=4096, intermediate=14336, kv_dim=1024, vocab=256000, layers=9),
    repeats=7,
    memcpy_bytes=1 << 30,  # far past the last-level cache (260 MiB on the machines here)
)
SMALL = Mode(
    name="small (smoke test; figures not meaningful)", flag=" --small",
    real_file=LlamaShape(hidden=512, intermediate=1408, kv_dim=128, vocab=8000, layers=9),
    sparse_file=LlamaShape(hidden=1024, intermediate=3584, kv_dim=256, vocab=64000, layers=9),
    repeats=3,
    memcpy_bytes=64 << 20,
)


# ---------------------------------------------------------------------------------------------
# Files, mappings and the page cache


def write_checkpoint(path: Path, shape: LlamaShape, *, sparse: bool) -> None:
    """Write a bf16 safetensors file: random N(0, 0.02) data, or a hole when sparse. Streamed
    tensor by tensor (save_file would hold the whole state dict in memory)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    specs = shape.tensors()
    for name, dims in specs:
        nbytes = 2 * int(np.prod(dims))
        header[name] = {"dtype": "BF16", "shape": dims, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # tensor data starts 8-aligned, as safetensors writes it
    generator = torch.Generator().manual_seed(0)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        if sparse:
            f.truncate(8 + len(blob) + offset)
        else:
            for _, dims in specs:
                values = torch.randn(dims, generator=generator).mul_(0.02).to(torch.bfloat16)
                f.write(values.view(torch.int16).numpy().data)
        f.flush()
        os.fsync(f.fileno())  # no writeback running under the timings


def data_bytes(path: Path) -> int:
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
    return path.stat().st_size - 8 - header_len


def page_cache_fraction(path: Path) -> float | None:
    """Fraction of the file's pages in the page cache (mincore), or None where it cannot tell."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as m:
            pages = (len(m) + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = (ctypes.c_ubyte * pages)()
            anchor = ctypes.c_char.from_buffer(m)
            rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(len(m)),
                              vec)
            del anchor
            return None if rc != 0 else sum(v & 1 for v in vec) / pages
    except (OSError, AttributeError, ValueError):
        return None


def file_mappings(path: Path) -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of `path`, from /proc/self/maps."""
    target = os.path.realpath(path)
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip("\n") == target:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def inside(ranges: list[tuple[int, int]], ptr: int, nbytes: int) -> bool:
    return any(start <= ptr and ptr + nbytes <= end for start, end in ranges)


# ---------------------------------------------------------------------------------------------
# Timing


def interleaved_ms(fns: dict[str, Callable[[], Any]], repeats: int, *,
                   inner: int = 1) -> dict[str, float]:
    """Median ms per call of each function over `repeats` rounds, after one warm-up round; a
    round runs every function in turn (timing `inner` calls of it). Each result is released after
    the clock stops, so freeing big outputs is not timed."""
    times: dict[str, list[float]] = {label: [] for label in fns}
    for round_ in range(1 + repeats):
        for label, fn in fns.items():
            gc.collect()
            start = time.perf_counter()
            for _ in range(inner):
                result = fn()
            elapsed = (time.perf_counter() - start) / inner
            del result
            if round_ > 0:
                times[label].append(elapsed)
    return {label: statistics.median(t) * 1e3 for label, t in times.items()}


# ---------------------------------------------------------------------------------------------
# What is timed


def hfport_open_list(path: str) -> list[str]:
    ck = hfport.open(path)
    names = ck.keys()
    del ck  # unmapped here, as leaving the with-block closes safe_open's file
    return names


def safetensors_open_list(path: str) -> list[str]:
    with safe_open(path, framework="pt") as f:
        return f.keys()


def hfport_as_torch(path: str) -> dict[str, torch.Tensor]:
    ck = hfport.open(path)
    names = ck.keys()
    return {name: torch.from_dlpack(ck[name]) for name in names}


def hfport_cast_f32(path: str) -> dict[str, torch.Tensor]:
    ck = hfport.open(path)
    names = ck.keys()
    return {name: torch.from_dlpack(ck[name].to("float32")) for name in names}


def load_file_float(path: str) -> dict[str, torch.Tensor]:
    return {name: t.float() for name, t in load_file(path).items()}


def copy_in_parts(dst: np.ndarray, src: np.ndarray, pool: ThreadPoolExecutor | None = None,
                  parts: int = 1) -> np.ndarray:
    """memcpy src into dst: on the calling thread, or in `parts` slices on the pool's workers
    (numpy releases the GIL while it copies)."""
    if pool is None:
        np.copyto(dst, src)
        return dst
    bounds = np.linspace(0, len(src), parts + 1, dtype=np.int64)
    list(pool.map(lambda lo, hi: np.copyto(dst[lo:hi], src[lo:hi]), bounds[:-1], bounds[1:]))
    return dst


def memcpy_candidates(nbytes: int, pool: ThreadPoolExecutor,
                      workers: int) -> dict[str, Callable[[], Any]]:
    """Copies of `nbytes` that make the memcpy reference: each into a pre-faulted buffer, and
    each into a fresh (never-touched) one, which also pays the first-touch page faults."""
    src = torch.ones(nbytes, dtype=torch.uint8)
    dst = torch.zeros(nbytes, dtype=torch.uint8)  # both pre-faulted
    src_np, dst_np = src.numpy(), dst.numpy()
    threads = f"{workers} threads"
    return {
        f"torch copy_, {torch.get_num_threads()} threads": lambda: dst.copy_(src),
        "numpy copyto, 1 thread": lambda: copy_in_parts(dst_np, src_np, None),
        f"numpy copyto, {threads}": lambda: copy_in_parts(dst_np, src_np, pool, workers),
        "fresh: torch empty_like + copy_": lambda: torch.empty_like(src).copy_(src),
        "fresh: numpy empty_like + copyto, 1 thread":
            lambda: copy_in_parts(np.empty_like(src_np), src_np),
        f"fresh: numpy empty_like + copyto, {threads}":
            lambda: copy_in_parts(np.empty_like(src_np), src_np, pool, workers),
    }


def check_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    if a.keys() != b.keys():
        raise AssertionError(f"{what}: hfport and safetensors list different tensors")
    for name, ours in a.items():
        if ours.dtype != b[name].dtype or not torch.equal(ours, b[name]):
            raise AssertionError(f"{what}: tensor '{name}' differs between hfport and safetensors")


# ---------------------------------------------------------------------------------------------
# The rows


@dataclass
class Row:
    case: str
    hfport_ms: float
    reference_ms: float
    target: str
    met: bool | None  # None: a context row with no target

    @property
    def ratio(self) -> float:
        return self.reference_ms / self.hfport_ms


def bench_open_list(mode: Mode, files: list[Path], count: int) -> tuple[list[Row], str]:
    """Rows 1-2: both files; the big file's row also asks that hfport's time did not grow."""
    rows, hf_ms, ref_ms = [], [], []
    for path in files:
        p = str(path)
        if hfport_open_list(p) != sorted(safetensors_open_list(p)):
            raise AssertionError(f"{path.name}: hfport and safetensors list different names")
        ms = interleaved_ms({"hfport": lambda p=p: hfport_open_list(p),
                             "reference": lambda p=p: safetensors_open_list(p)},
                            mode.repeats, inner=OPEN_INNER)
        hf_ms.append(ms["hfport"])
        ref_ms.append(ms["reference"])
        sparse = ", sparse" if path is files[-1] else ""
        rows.append(Row(f"open + list tensors, {path.stat().st_size / 1e9:.2f} GB{sparse} "
                        f"({count} tensors)", ms["hfport"], ms["reference"],
                        "not slower; time independent of file size",
                        ms["hfport"] <= ms["reference"]))
    growth, ref_growth = hf_ms[1] / hf_ms[0], ref_ms[1] / ref_ms[0]
    rows[1].met = rows[1].met and growth <= SIZE_INDEPENDENT_TOLERANCE
    sizes = [f"{path.stat().st_size / 1e9:.2f} GB" for path in files]
    note = (f"Open + list, time on the {sizes[1]} file / on the {sizes[0]} file (same {count} "
            f"names): hfport {growth:.2f}x, safetensors {ref_growth:.2f}x; the {sizes[1]} row's "
            f"met? also needs hfport's <= {SIZE_INDEPENDENT_TOLERANCE}x. Each call opens, lists "
            f"and closes (unmaps) the file; {OPEN_INNER} calls per timed repeat.")
    return rows, note


def warm_page_cache(path: Path) -> str:
    """Read the file through both loaders (checking their casts agree) and plainly; say how much
    of it is now cached."""
    check_same(hfport_cast_f32(str(path)), load_file_float(str(path)), "cast to f32")
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass
    cached = page_cache_fraction(path)
    return "unknown" if cached is None else f"{cached:.0%}"


def bench_as_torch(mode: Mode, path: Path, count: int) -> tuple[Row, str]:
    """Row 3: every tensor as torch, bf16 kept; hfport's tensors must lie in its mapping."""
    p = str(path)
    ours = hfport_as_torch(p)
    ranges = file_mappings(path)  # only hfport's mapping of the file is alive here
    outside = [t.nbytes for t in ours.values() if not inside(ranges, t.data_ptr(), t.nbytes)]
    copied = sum(outside)
    theirs = load_file(p)
    check_same(ours, theirs, "as torch")
    del ours
    ranges = file_mappings(path)
    theirs_mapped = sum(inside(ranges, t.data_ptr(), t.nbytes) for t in theirs.values())
    del theirs
    ms = interleaved_ms({"hfport": lambda: hfport_as_torch(p), "reference": lambda: load_file(p)},
                        mode.repeats)
    row = Row(f"every tensor as torch, bf16 kept, {path.stat().st_size / 1e9:.2f} GB "
              f"(hfport copies {copied} B)", ms["hfport"], ms["reference"],
              ">= 1.0x, 0 bytes copied", ms["hfport"] <= ms["reference"] and copied == 0)
    note = (f"As torch: {count - len(outside)}/{count} hfport tensors have data_ptr .. data_ptr + "
            f"nbytes inside hfport's own mmap of the file (/proc/self/maps, read with no other "
            f"mapping of it alive), so hfport copied {copied} bytes. load_file maps the file too "
            f"(torch UntypedStorage.from_file, MAP_PRIVATE): {theirs_mapped}/{count} of its "
            f"tensors lie inside its mapping. Neither side reads tensor data here, so both times "
            f"are per-tensor bookkeeping: header parse, tensor objects, the dict.")
    return row, note


def bench_cast(mode: Mode, path: Path) -> tuple[list[Row], str]:
    """Rows 4-6: every tensor cast bf16 -> f32, against load_file + .float() and memcpy."""
    p = str(path)
    elements = data_bytes(path) // 2
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        copies = memcpy_candidates(mode.memcpy_bytes, pool, workers)
        ms = interleaved_ms({"hfport": lambda: hfport_cast_f32(p),
                             "reference": lambda: load_file_float(p), **copies}, mode.repeats)
    gbps = {label: 2 * mode.memcpy_bytes / ms[label] / 1e6 for label in copies}
    memcpy = max(v for label, v in gbps.items() if not label.startswith("fresh"))
    fresh = max(v for label, v in gbps.items() if label.startswith("fresh"))
    moved = 6 * elements  # 2 bytes read and 4 written per element
    memcpy_ms = moved / memcpy / 1e6
    gb_in = 2 * elements / 1e9
    rows = [
        Row(f"every tensor cast bf16 -> f32, {gb_in:.2f} GB -> {2 * gb_in:.2f} GB, vs load_file "
            "+ .float()", ms["hfport"], ms["reference"], ">= 2x (threads)",
            ms["reference"] / ms["hfport"] >= 2.0),
        Row(f"same cast vs memcpy moving its {moved / 1e9:.2f} GB (ratio = share of memcpy "
            "bandwidth)", ms["hfport"], memcpy_ms, ">= 0.60 (60% of memcpy)",
            memcpy_ms / ms["hfport"] >= 0.60),
        Row("context: same cast vs memcpy into fresh, never-touched memory (first-touch page "
            "faults included on both sides)", ms["hfport"], moved / fresh / 1e6,
            "none (shows how much of the cast is first touch)", None),
    ]
    copy_text = "; ".join(f"{label} {v:.1f} GB/s" for label, v in gbps.items())
    note = (f"Cast: bandwidth counts bytes read + written (2 + 4 per element). hfport's cast ran "
            f"at {moved / ms['hfport'] / 1e6:.1f} GB/s, load_file + .float() at "
            f"{moved / ms['reference'] / 1e6:.1f} GB/s; both include opening the file and "
            f"first-touching their fresh f32 outputs. The memcpy reference (row 5) is the fastest "
            f"copy between pre-faulted {mode.memcpy_bytes >> 20} MiB buffers, row 6's the fastest "
            f"into fresh ones, all timed in the same rounds as the casts: {copy_text}.")
    return rows, note


def run(mode: Mode, workdir: Path) -> tuple[list[Row], list[str]]:
    real = workdir / "llama_real.safetensors"
    sparse = workdir / "llama_sparse.safetensors"
    write_checkpoint(real, mode.real_file, sparse=False)
    write_checkpoint(sparse, mode.sparse_file, sparse=True)
    count = len(mode.real_file.tensors())
    open_rows, open_note = bench_open_list(mode, [real, sparse], count)
    sparse.unlink()
    cached = warm_page_cache(real)
    cache_note = (f"The {real.stat().st_size / 1e9:.2f} GB file was {cached} in the page cache "
                  f"(mincore) after a warm-up pass by both loaders, so rows 3-6 compare cache "
                  f"against cache, not disk.")
    torch_row, torch_note = bench_as_torch(mode, real, count)
    cast_rows, cast_note = bench_cast(mode, real)
    return open_rows + [torch_row] + cast_rows, [open_note, cache_note, torch_note, cast_note]


# ---------------------------------------------------------------------------------------------
# Report


def source_revision() -> str:
    """The commit the benchmark ran at, and whether the C++ sources differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "csrc"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "git revision unknown"
    return f"git {head}" + (" with uncommitted csrc changes" if dirty else "")


def machine_line() -> str:
    cpu, ram_gib = platform.processor() or "unknown CPU", 0.0
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), cpu)
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / (1 << 20)
    hfport_threads = os.environ.get("HFPORT_NUM_THREADS") or f"{os.cpu_count()} (default)"
    return (f"Machine: {cpu}, {os.cpu_count()} cores (os.cpu_count), {ram_gib:.0f} GiB RAM. "
            f"Threads: torch {torch.get_num_threads()}, hfport {hfport_threads}. "
            f"Date: {datetime.date.today().isoformat()}. Python {platform.python_version()}, "
            f"torch {torch.__version__}, safetensors {safetensors.__version__}, "
            f"numpy {np.__version__}, hfport {hfport.__version__} ({source_revision()}).")


def render(mode: Mode, rows: list[Row], notes: list[str], load: tuple[float, float]) -> str:
    lines = [
        "## Loader (CPU)",
        "",
        machine_line(),
        (f"Load average (1 min) before the run {load[0]:.2f}, after it {load[1]:.2f}; the run "
         f"adds up to {os.cpu_count()} itself, anything more means other processes shared the "
         f"cores, which hurts multi-threaded timings most."),
        (f"Median of {mode.repeats} repeats after one warm-up round, hfport and reference timed "
         f"in alternation; mode: {mode.name}. Command: `python benchmarks/bench_loader.py"
         f"{mode.flag}`."),
        "",
        ("| case | hfport (ms) | reference (ms) | ratio (reference/hfport, >1 means hfport "
         "faster) | target | met? |"),
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [f"| {r.case} | {r.hfport_ms:.3f} | {r.reference_ms:.3f} | {r.ratio:.2f}x | "
              f"{r.target} | {MET_TEXT[r.met]} |" for r in rows]
    lines += [
        "",
        ('References: rows 1-2 `safetensors.safe_open(p, "pt").keys()`; row 3 '
         "`safetensors.torch.load_file(p)`; row 4 `load_file(p)` then `.float()` on each tensor; "
         "row 5 a memcpy moving the cast's bytes at the bandwidth measured in this run, between "
         "pre-faulted buffers; row 6 the same into fresh buffers."),
        "",
    ]
    return "\n".join(lines + [f"- {note}" for note in notes]) + "\n"


def write_section(path: Path, section: str, script: str = "bench_loader") -> None:
    """Replace the text between one script's markers (<!-- script:begin/end -->), keeping the rest
    of the file. The other benchmark scripts write their sections through this too."""
    begin_marker, end_marker = f"<!-- {script}:begin -->", f"<!-- {script}:end -->"
    block = f"{begin_marker}\n{section}{end_marker}\n"
    text = path.read_text() if path.exists() else DOC_INTRO
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin >= 0 and end > begin:
        text = text[:begin] + block + text[end + len(end_marker):].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def table_options(doc: str, small_help: str = "small shapes (tests)") -> argparse.ArgumentParser:
    """The options of the scripts that time ops in repeated blocks and print one table:
    --small, --repeats (None: the script's default) and --write. `doc` is the script's docstring,
    whose first paragraph describes it."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help=small_help)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--write", type=Path, metavar="PATH", help="update this markdown file")
    return parser


def main_with_workdir(argv: list[str] | None, doc: str, script: str,
                      run: Callable[[Path, bool, int], str], repeats: tuple[int, int],
                      small_help: str = "tiny models (tests)") -> int:
    """The main of a script that saves checkpoints into a scratch folder and prints one section:
    table_options' flags; `repeats` is the default (small, full) when --repeats is not given; the
    folder is removed afterwards; --write updates that file's `script` section."""
    args = table_options(doc, small_help).parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix=f"hfport_{script}_"))
    try:
        section = run(workdir, args.small, args.repeats or repeats[0 if args.small else 1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write(section)
    if args.write:
        write_section(args.write, section, script)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="~64 MB files and 3 repeats: a smoke run of a few seconds")
    parser.add_argument("--write", type=Path, metavar="PATH",
                        help="replace this script's section of PATH (e.g. docs/benchmarks.md)")
    parser.add_argument("--dir", type=Path,
                        help="folder for the temporary checkpoints (default: the system's temp)")
    args = parser.parse_args(argv)
    mode = SMALL if args.small else FULL
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="hfport_bench_loader_", dir=args.dir))
    load_start = os.getloadavg()[0]
    try:
        rows, notes = run(mode, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    section = render(mode, rows, notes, (load_start, os.getloadavg()[0]))
    print(section, end="")
    if args.write is not None:
        write_section(args.write, section)
        print(f"wrote the loader section of {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
