"""GPU benchmark of hfport.ops.linear (cuBLASLt) against torch.nn.functional.linear, bf16,
LLaMA-7B projection shapes, measured in the same run on the same inputs.

| case | reference |
| x [m, 4096] @ W[4096, 4096]^T, m = 1 / 128 / 4096 (q/k/v/o) | torch.nn.functional.linear |
| x [m, 4096] @ W[11008, 4096]^T, m = 1 / 128 / 4096 (gate/up) | torch.nn.functional.linear |
| the same with bias and the tanh GELU (m = 4096) | F.gelu(F.linear(x, W, b), approximate="tanh") |

TFLOP/s = 2 m n k / time. Both sides write into preallocated outputs where they can (hfport's
`out=`; torch's caching allocator makes its own output cheap), so neither pays for an allocation.
Each case first checks the two outputs agree (relative L2 < 1e-2), then times blocks of calls
with torch.cuda.Event on the current stream, alternating hfport and torch, and takes the median.
Without a GPU (or a build of hfport without CUDA / cuBLASLt) it says so and exits 0.

    python benchmarks/bench_gpu_linear.py                          # print the table
    python benchmarks/bench_gpu_linear.py --write docs/benchmarks.md
    python benchmarks/bench_gpu_linear.py --small                  # fewer repeats (a smoke run)
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import hfport
import torch
import torch.nn.functional as F
from gpu_timing import cuda_event_ms, gpu_line, no_gpu_message, no_gpu_reason
from hfport import ops

HIDDEN, INTERMEDIATE = 4096, 11008


def unavailable() -> str | None:
    reason = no_gpu_reason()
    if reason is None and not hfport._hfport.built_with_cublaslt():
        return "this build of hfport has no cuBLASLt"
    return reason


def median_pair(ours: Callable[[], object], theirs: Callable[[], object], calls: int,
                rounds: int) -> tuple[float, float]:
    for fn in (ours, theirs):  # warm-up: algorithm choice, allocator, clocks
        cuda_event_ms(fn, max(3, calls // 4))
    a, b = [], []
    for _ in range(rounds):
        a.append(cuda_event_ms(ours, calls))
        b.append(cuda_event_ms(theirs, calls))
    return statistics.median(a), statistics.median(b)


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.double(), expected.double()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-30))


def run_case(m: int, n: int, k: int, fused: bool, calls: int, rounds: int) -> str:
    gen = torch.Generator(device="cuda").manual_seed(m * 31 + n)
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=gen)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=gen) * k**-0.5
    b = torch.randn(n, device="cuda", dtype=torch.bfloat16, generator=gen) if fused else None
    activation = "gelu_tanh" if fused else None
    out = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)

    def ours() -> object:
        return ops.linear(x, w, b, activation=activation, out=out)

    def theirs() -> torch.Tensor:
        y = F.linear(x, w, b)
        return F.gelu(y, approximate="tanh") if fused else y

    ours()
    error = relative_l2(out, theirs())
    if not error < 1e-2:
        raise SystemExit(f"m={m} n={n} k={k}: hfport and torch disagree (relative L2 {error:.2e})")
    ms_ours, ms_theirs = median_pair(ours, theirs, calls, rounds)
    flops = 2.0 * m * n * k
    name = f"m={m} [{n}x{k}]" + (" +bias +gelu_tanh" if fused else "")
    return (f"| {name} | {flops / ms_ours / 1e9:.1f} | {flops / ms_theirs / 1e9:.1f} | "
            f"{ms_theirs / ms_ours:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--write", type=Path, metavar="PATH",
                        help="replace this script's section of PATH (e.g. docs/benchmarks.md)")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason is not None:
        print(no_gpu_message("bench_gpu_linear", reason))
        return 0
    calls, rounds = (5, 3) if args.small else (50, 7)
    lines = [
        "## linear on the GPU (cuBLASLt), bf16",
        "",
        (f"Device: {gpu_line()}, {datetime.date.today().isoformat()}. "
         "TFLOP/s = 2mnk / median time; "
         "hfport vs torch = torch time / hfport time."),
        "",
        "| case | hfport TFLOP/s | torch TFLOP/s | hfport vs torch |",
        "| --- | --- | --- | --- |",
    ]
    for line in lines:
        print(line)
    cases = [(m, n, False) for n in (HIDDEN, INTERMEDIATE) for m in (1, 128, 4096)]
    for m, n, fused in [*cases, (4096, INTERMEDIATE, True)]:
        lines.append(run_case(m, n, HIDDEN, fused, calls, rounds))
        print(lines[-1], flush=True)
    if args.write is not None:
        from bench_loader import write_section  # one set of section markers for every script

        write_section(args.write, "\n".join(lines) + "\n", "bench_gpu_linear")
    return 0


if __name__ == "__main__":
    sys.exit(main())
