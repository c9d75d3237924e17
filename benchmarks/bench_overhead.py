"""Call overhead (CPU): what an hfport.ops call costs from Python beyond its arithmetic, against
the same torch op in the same run.

Tiny inputs make the fixed cost the whole cost: reading the torch tensor through DLPack, the
argument checks, allocating the output, handing it back, and (for inputs big enough to be split)
waking the thread pool. Target (issue 13): a 1-element op call costs <= 5 microseconds.

| op | reference |
| silu on 1 and 4096 elements | torch.nn.functional.silu |
| rms_norm of 1 x 4096 and 16 x 4096 | transformers LlamaRMSNorm |

    python benchmarks/bench_overhead.py                          # print the table
    python benchmarks/bench_overhead.py --write docs/benchmarks.md
    python benchmarks/bench_overhead.py --small                  # fewer calls (tests)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from bench_loader import machine_line, table_options, write_section
from hfport import ops
from transformers.models.llama.modeling_llama import LlamaRMSNorm

TARGET_US = 5.0


def per_call_us(fn: Callable[[], Any], calls: int, rounds: int = 7) -> float:
    """Best of `rounds` (the least disturbed) mean per-call time over `calls` back-to-back calls."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def cases() -> list[tuple[str, Callable[[], Any], Callable[[], Any], float | None]]:
    """(label, hfport call, reference call, target in microseconds or None)."""
    out: list[tuple[str, Callable[[], Any], Callable[[], Any], float | None]] = []
    for n in (1, 4096):
        x = torch.randn(n)
        out.append((f"silu, {n} element{'s' if n > 1 else ''}", lambda x=x: ops.silu(x),
                    lambda x=x: F.silu(x), TARGET_US if n == 1 else None))
    norm = LlamaRMSNorm(4096, eps=1e-6)
    weight = norm.weight.detach()
    for rows in (1, 16):
        x = torch.randn(rows, 4096)

        def theirs(x=x):
            with torch.no_grad():
                return norm(x)

        out.append((f"rms_norm, {rows} x 4096", lambda x=x: ops.rms_norm(x, weight, 1e-6),
                    theirs, None))
    return out


def run(small: bool) -> str:
    calls = 200 if small else 5000
    load_before = os.getloadavg()[0]
    rows = []
    for label, ours, theirs, target in cases():
        t_ours = per_call_us(ours, calls)
        t_theirs = per_call_us(theirs, calls)
        met = "-" if target is None else ("yes" if t_ours <= target else "**no**")
        target_text = "none" if target is None else f"<= {target:g} us"
        rows.append(f"| {label} | {t_ours:.2f} | {t_theirs:.2f} | {t_theirs / t_ours:.2f}x | "
                    f"{target_text} | {met} |")
    lines = [
        "## Call overhead (CPU)",
        "",
        machine_line(),
        (f"Best of 7 rounds of the mean over {calls} back-to-back calls, after a warm-up call, "
         f"torch tensors in, hfport's and the reference's calls timed in turn on the same inputs. "
         f"Load average (1 min) before the run {load_before:.2f}, after it "
         f"{os.getloadavg()[0]:.2f}. "
         f"Command: `python benchmarks/bench_overhead.py{' --small' if small else ''}`."),
        "",
        "| call | hfport (us) | reference (us) | ratio (>1: hfport faster) | target | met? |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *rows,
    ]
    lines += ["", ("References: `torch.nn.functional.silu`; `LlamaRMSNorm(4096)` under "
                   "`torch.no_grad()`. hfport's figure includes reading the torch tensor through "
                   "DLPack and returning an hfport.Tensor (no torch.from_dlpack on the result).")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = table_options(__doc__).parse_args(argv)
    section = run(args.small)
    sys.stdout.write(section)
    if args.write:
        write_section(args.write, section, "bench_overhead")
    return 0


if __name__ == "__main__":
    sys.exit(main())
