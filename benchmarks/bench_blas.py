"""Which sgemm for hfport's CPU linear (issue 13): the GEMM shapes of the native models, timed in
one run through every BLAS this machine has, as GFLOP/s and as a ratio to torch's F.linear.

A GEMM here is a linear without bias: Y[M, N] = X[M, K] W[N, K]^T, row-major, W read transposed
in place (the call hfport's linear makes). Shapes: ViT-B/16 batch 8 (M = 8 * 197 tokens, K/N in
768/2304/3072), DINOv2-S/14 batch 8 (M = 8 * 257, 384/1152/1536), a LLaMA-shaped prefill (hidden
1024, seq 128).

Columns, each loaded from its shared object through ctypes and given the same thread count as
torch (its own threads, set before every block of calls):

- torch: `torch.nn.functional.linear` (the MKL statically linked into torch's CPU wheel), the
  reference of every ratio;
- hfport: `hfport.ops.linear`, i.e. OpenBLAS single-threaded on slabs run by hfport's pool (what
  the models call);
- OpenBLAS (Debian, pthreads): the libopenblas the Makefile build links, its own threads;
- OpenBLAS (Debian, OpenMP): `apt-get install libopenblas0-openmp`;
- scipy-openblas32: the PyPI OpenBLAS the pip build links (`pip install scipy-openblas32`);
- MKL: `pip install mkl` (libmkl_rt, Intel OpenMP threads);
- BLIS (Debian, pthreads): `apt-get install libblis4-pthread`.

A library that is not installed is left out and named under the table. Each library's result is
checked against torch's (relative L2 < 1e-5) before timing. Timing: rounds in which every library
runs a block of calls in turn (so a slow spell of a shared machine hits all of them), the median
of all calls; the load average before and after goes into the notes.

    python benchmarks/bench_blas.py                          # print the table
    python benchmarks/bench_blas.py --write docs/benchmarks.md
    python benchmarks/bench_blas.py --small                  # small shapes, seconds (tests)
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hfport
import hfport.ops
import torch
from bench_loader import machine_line, table_options, write_section

# CBLAS enum values (cblas.h): the same in every library here.
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

FULL_SHAPES = [  # (model, M, N, K)
    ("ViT-B/16 b8 qkv", 8 * 197, 2304, 768),
    ("ViT-B/16 b8 attn out", 8 * 197, 768, 768),
    ("ViT-B/16 b8 mlp up", 8 * 197, 3072, 768),
    ("ViT-B/16 b8 mlp down", 8 * 197, 768, 3072),
    ("DINOv2-S/14 b8 qkv", 8 * 257, 1152, 384),
    ("DINOv2-S/14 b8 mlp up", 8 * 257, 1536, 384),
    ("DINOv2-S/14 b8 mlp down", 8 * 257, 384, 1536),
    ("LLaMA-shaped s128 qkv", 128, 3072, 1024),
    ("LLaMA-shaped s128 gate+up", 128, 5632, 1024),
]
SMALL_SHAPES = [("small a", 64, 96, 32), ("small b", 50, 40, 72)]


@dataclass
class Library:
    label: str  # short: the column's name
    detail: str  # version and kernels, for the notes
    gemm: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any]
    set_threads: Callable[[int], None]


def cblas_library(label: str, detail: str, path: str, prefix: str, threads_fn: str,
                  threads_arg: Any = ctypes.c_int) -> Library:
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    sgemm = getattr(lib, prefix + "cblas_sgemm")
    sgemm.restype = None
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    set_threads = getattr(lib, threads_fn)
    set_threads.restype = None
    set_threads.argtypes = [threads_arg]

    def gemm(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> None:
        m, k = x.shape
        n = w.shape[0]
        sgemm(ROW_MAJOR, NO_TRANS, TRANS, m, n, k, 1.0, x.data_ptr(), k, w.data_ptr(), k, 0.0,
              y.data_ptr(), n)

    return Library(label, detail, gemm, lambda n: set_threads(n))


def openblas_version(path: str, prefix: str = "") -> str:
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    get_config = getattr(lib, prefix + "openblas_get_config")
    get_config.restype = ctypes.c_char_p
    core = getattr(lib, prefix + "openblas_get_corename")
    core.restype = ctypes.c_char_p
    return f"{get_config().decode().split()[1]}, kernels {core().decode()}"


def find_libraries() -> tuple[list[Library], list[str]]:
    """The BLAS libraries installed here (besides torch and hfport), and a note per absent one."""
    found: list[Library] = []
    missing: list[str] = []
    debian = "/usr/lib/x86_64-linux-gnu"
    for variant, package in (("pthread", "libopenblas0-pthread"), ("openmp", "libopenblas0-openmp")):
        path = f"{debian}/openblas-{variant}/libopenblas.so.0"
        if os.path.exists(path):
            found.append(cblas_library(
                f"OpenBLAS Debian {variant}", f"OpenBLAS {openblas_version(path)}", path, "",
                "openblas_set_num_threads"))
        else:
            missing.append(f"OpenBLAS {variant} (`apt-get install {package}`)")
    if importlib.util.find_spec("scipy_openblas32") is not None:
        import scipy_openblas32
        path = str(Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so")
        found.append(cblas_library(
            "scipy-openblas32", f"OpenBLAS {openblas_version(path, 'scipy_')}", path,
            "scipy_", "scipy_openblas_set_num_threads"))
    else:
        missing.append("scipy-openblas32 (`pip install scipy-openblas32`)")
    mkl = next(iter(sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so.*"))), None)
    if mkl is not None:
        # MKL's default threading layer is Intel OpenMP, which the `mkl` wheel depends on.
        ctypes.CDLL(str(Path(sys.prefix) / "lib" / "libiomp5.so"), mode=ctypes.RTLD_GLOBAL)
        found.append(cblas_library("MKL (PyPI)", f"MKL {mkl_version(str(mkl))}, libmkl_rt",
                                   str(mkl), "", "MKL_Set_Num_Threads"))
    else:
        missing.append("MKL (`pip install mkl`)")
    blis = f"{debian}/blis-pthread/libblis.so.4"
    if os.path.exists(blis):
        found.append(cblas_library("BLIS Debian pthread", "BLIS 0.9.0", blis, "",
                                   "bli_thread_set_num_threads", ctypes.c_int64))
    else:
        missing.append("BLIS (`apt-get install libblis4-pthread`)")
    return found, missing


def mkl_version(path: str) -> str:
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    buf = ctypes.create_string_buffer(256)
    lib.mkl_get_version_string(buf, 256)
    text = buf.value.decode()
    return text.split("Version")[1].split("-Product")[0].strip() if "Version" in text else "?"


def shape_calls(libraries: list[Library], x: torch.Tensor, w: torch.Tensor,
                threads: int) -> dict[str, tuple[Callable[[], Any], Callable[[], None]]]:
    """Per column: a call that returns Y (poisoned before the first call), and the setup run
    before each block of calls (the library's thread count)."""
    calls: dict[str, tuple[Callable[[], Any], Callable[[], None]]] = {
        "torch F.linear": (lambda: torch.nn.functional.linear(x, w), lambda: None),
        # OpenBLAS shared with the Debian pthread column goes back to one thread, as hfport's
        # linear expects; hfport's pool sized itself once.
        "hfport.ops.linear": (lambda: hfport.ops.linear(x, w), reset_openblas),
    }
    for lib in libraries:
        y = torch.full((x.shape[0], w.shape[0]), float("nan"))

        def call(lib: Library = lib, y: torch.Tensor = y) -> torch.Tensor:
            lib.gemm(x, w, y)
            return y

        calls[lib.label] = (call, lambda lib=lib: lib.set_threads(threads))
    return calls


def isa() -> str:
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    levels = [name for name, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("FMA", "fma"),
                                      ("AMX", "amx_tile")) if flag in flags]
    return " + ".join(levels) or "no AVX"


def run(small: bool, repeats: int, threads: int) -> str:
    load_before = os.getloadavg()[0]
    torch.set_num_threads(threads)
    os.environ["HFPORT_NUM_THREADS"] = str(threads)  # hfport reads it at its pool's creation
    libraries, missing = find_libraries()
    columns = ["torch F.linear", "hfport.ops.linear"] + [lib.label for lib in libraries]
    rows = []
    for model, m, n, k in SMALL_SHAPES if small else FULL_SHAPES:
        g = torch.Generator().manual_seed(m * n + k)
        x = torch.randn(m, k, generator=g)
        w = torch.randn(n, k, generator=g) / k ** 0.5
        want = torch.nn.functional.linear(x, w)
        calls = shape_calls(libraries, x, w, threads)
        for label, (fn, setup) in calls.items():
            setup()
            got = torch.from_dlpack(fn())
            err = ((got.double() - want.double()).norm() / want.double().norm()).item()
            if not err < 1e-5:
                raise AssertionError(f"{model}: {label} differs from torch (rel. L2 {err:.2e})")
        times: dict[str, list[float]] = {label: [] for label in calls}
        block = 3 if small else max(1, int(0.3e9 / (2 * m * n * k)) + 1)
        for _ in range(repeats):
            for label, (fn, setup) in calls.items():
                setup()
                fn()  # warm: wakes the library's threads, evicts the previous one's packs
                for _ in range(block):
                    start = time.perf_counter()
                    fn()
                    times[label].append(time.perf_counter() - start)
        gflops = {label: 2 * m * n * k / statistics.median(t) / 1e9 for label, t in times.items()}
        ref = gflops["torch F.linear"]
        cells = [f"{gflops[c]:.0f} ({gflops[c] / ref:.2f}x)" for c in columns[2:]]
        best = max(columns[1:], key=lambda c: gflops[c])
        rows.append(f"| {model}, {m}x{n}x{k} | {ref:.0f} | {gflops['hfport.ops.linear']:.0f} | "
                    f"{gflops['hfport.ops.linear'] / ref:.2f}x | {' | '.join(cells)} | "
                    f"{best} |")
    reset_openblas()
    load_after = os.getloadavg()[0]
    header = ("| GEMM, MxNxK | torch GFLOP/s | hfport GFLOP/s | hfport / torch | "
              + " | ".join(f"{c} GFLOP/s (/ torch)" for c in columns[2:]) + " | fastest but torch |")
    lines = [
        "## sgemm libraries on the models' GEMM shapes (CPU, float32)",
        "",
        machine_line(),
        (f"ISA: {isa()}. torch {torch.__version__} ({mkl_in_torch()}). Every library on "
         f"{threads} threads (its own threads; hfport's pool for hfport). Load average (1 min) "
         f"before the run {load_before:.2f}, after it {load_after:.2f}; the run adds up to "
         f"{threads} itself, anything more means other processes shared the cores. Median of "
         f"{repeats} rounds, each a block of calls per library in turn. Command: "
         f"`python benchmarks/bench_blas.py{' --small' if small else ''}`."),
        "",
        header,
        "| --- " * 4 + "| ---: " * (len(columns) - 2) + "| --- |",
        *rows,
        "",
        ("Y = X W^T, row-major, W [N, K] read transposed in place, no bias. Libraries: "
         + "; ".join(f"{lib.label} = {lib.detail}" for lib in libraries) + ". "
         + (f"Not installed, left out: {'; '.join(missing)}." if missing else "")),
    ]
    return "\n".join(lines) + "\n"


def reset_openblas() -> None:
    """hfport's linear runs OpenBLAS on one thread inside each pool thread; the Debian pthread
    column may share that library instance, so it is set back after its block."""
    path = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"
    if os.path.exists(path):
        ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL).openblas_set_num_threads(1)


def mkl_in_torch() -> str:
    config = torch.__config__.show()
    line = next((li for li in config.splitlines() if "Math Kernel Library" in li), "")
    return ("MKL " + line.split("Version")[1].split("-Product")[0].strip()
            if "Version" in line else "no MKL")


def main(argv: list[str] | None = None) -> int:
    parser = table_options(__doc__, "two small shapes, seconds (tests)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    section = run(args.small, args.repeats or (3 if args.small else 7), args.threads)
    sys.stdout.write(section)
    if args.write:
        write_section(args.write, section, "bench_blas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
