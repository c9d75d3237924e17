"""GPU attention benchmark (issue 7, BENCHMARKS.md "GPU"): hfport's flash attention kernel against
torch SDPA's FlashAttention-2 backend and its cuDNN backend, each forced with
torch.nn.attention.sdpa_kernel, on the same bf16 inputs in the same run.

| case | FLOPs |
| B4 H32 D128, S 1k / 4k / 8k, causal and not | 4 B H S^2 D, halved when causal |
| B4 H32 D64 and D256, S 4k, causal and not | same |

hfport runs through hfport.ops.attention when that op takes CUDA tensors (the dispatch of issue 7),
else through the kernel's test hook _flash_attention_for_tests into a preallocated output; the note
under the table says which. Each case first checks that hfport agrees with the FA2 backend
(relative L2 < 1e-2), then times every contender with CUDA events after a warm-up, in
alternation, median of the repeats. Ratios are reference time / hfport time (> 1: hfport faster).
The table names the device, driver and date. Without a GPU it prints why and exits 0.

    python benchmarks/bench_gpu_attention.py                        # print the table
    python benchmarks/bench_gpu_attention.py --write docs/benchmarks.md
    python benchmarks/bench_gpu_attention.py --small                # small shapes, a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hfport
import torch
import torch.nn.functional as F
from gpu_timing import cuda_event_ms, gpu_line, no_gpu_message, no_gpu_reason
from hfport.errors import Error as HfportError
from torch.nn.attention import SDPBackend, sdpa_kernel

SCRIPT = "bench_gpu_attention"


@dataclass
class Case:
    batch: int
    heads: int
    seq: int
    dim: int
    causal: bool

    @property
    def label(self) -> str:
        seq = f"{self.seq // 1024}k" if self.seq % 1024 == 0 else str(self.seq)
        return (f"B{self.batch} H{self.heads} S{seq} D{self.dim}, "
                f"{'causal' if self.causal else 'non-causal'}")

    @property
    def flops(self) -> float:
        full = 4.0 * self.batch * self.heads * self.seq * self.seq * self.dim
        return full / 2 if self.causal else full


def cases(small: bool) -> list[Case]:
    if small:
        return [Case(2, 4, 512, 128, c) for c in (False, True)] + [Case(2, 4, 512, 64, True)]
    out = [Case(4, 32, s, 128, c) for s in (1024, 4096, 8192) for c in (False, True)]
    out += [Case(4, 32, 4096, d, c) for d in (64, 256) for c in (False, True)]
    return out


def why_no_gpu() -> str | None:
    reason = no_gpu_reason()
    if reason is None and not hasattr(hfport._hfport, "_flash_attention_for_tests"):
        return "this hfport build has no flash attention kernel"
    return reason


def hfport_runner() -> tuple[str, Callable]:
    """(description, fn(q, k, v, causal) -> output) for the path hfport is timed through."""
    probe = torch.randn(1, 1, 8, 64, device="cuda", dtype=torch.bfloat16)
    try:
        torch.from_dlpack(hfport.ops.attention(probe, probe, probe))
    except HfportError:
        buffers: dict[torch.Size, torch.Tensor] = {}

        def hook(q, k, v, causal):
            # One output buffer per shape, reused: the kernel alone is timed.
            buffer = buffers.setdefault(q.shape, torch.empty_like(q))
            hfport._hfport._flash_attention_for_tests(q, k, v, buffer, causal=causal)
            return buffer
        why = ("the flash kernel through its test hook into a preallocated output "
               "(hfport.ops.attention does not take CUDA tensors in this build)")
        return why, hook

    def public(q, k, v, causal):
        return torch.from_dlpack(hfport.ops.attention(q, k, v, causal=causal))
    return "hfport.ops.attention (output allocated per call)", public


def sdpa(backend: SDPBackend) -> Callable:
    def run(q, k, v, causal):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return run


def measure(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float | None]:
    """Median ms per contender (None when it cannot run), timed in alternation after a warm-up."""
    usable = {}
    for name, fn in fns.items():
        try:
            for _ in range(3):
                fn()
            torch.cuda.synchronize()
            usable[name] = fn
        except RuntimeError as error:  # e.g. a backend that does not take this shape or device
            print(f"  {name}: not available here ({str(error).splitlines()[0]})", file=sys.stderr)
    times: dict[str, list[float]] = {name: [] for name in usable}
    for _ in range(repeats):
        for name, fn in usable.items():
            times[name].append(cuda_event_ms(fn))
    return {name: statistics.median(times[name]) if name in times else None for name in fns}


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def run(small: bool) -> tuple[list[str], list[str]]:
    path, ours = hfport_runner()
    fa2, cudnn = sdpa(SDPBackend.FLASH_ATTENTION), sdpa(SDPBackend.CUDNN_ATTENTION)
    repeats = 5 if small else 20
    rows, notes = [], [f"hfport timed through {path}."]
    for case in cases(small):
        g = torch.Generator(device="cuda").manual_seed(case.seq + case.dim)
        shape = (case.batch, case.heads, case.seq, case.dim)
        q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=g)
                   for _ in range(3))
        error = rel_l2(ours(q, k, v, case.causal), fa2(q, k, v, case.causal))
        if not error < 1e-2:
            raise SystemExit(f"{case.label}: hfport differs from the FA2 backend, relative L2 "
                             f"{error:.3g}; not timing a wrong result")
        ms = measure({name: (lambda fn=fn, q=q, k=k, v=v, c=case.causal: fn(q, k, v, c))
                      for name, fn in (("hfport", ours), ("fa2", fa2), ("cudnn", cudnn))},
                     repeats)

        def tflops(t: float | None, flops: float = case.flops) -> str:
            return "n/a" if t is None else f"{flops / (t * 1e-3) / 1e12:.0f}"

        def ratio(t: float | None, ours_ms: float = ms["hfport"]) -> str:
            return "n/a" if t is None else f"{t / ours_ms:.2f}x"

        def millis(t: float | None) -> str:
            return "n/a" if t is None else f"{t:.3f}"

        met = "yes" if ms["fa2"] is not None and ms["fa2"] / ms["hfport"] >= 1.0 else "no"
        rows.append(f"| {case.label} | {millis(ms['hfport'])} | {millis(ms['fa2'])} | "
                    f"{millis(ms['cudnn'])} | {tflops(ms['hfport'])} | {tflops(ms['fa2'])} | "
                    f"{tflops(ms['cudnn'])} | {ratio(ms['fa2'])} | {ratio(ms['cudnn'])} | "
                    f">= 1.0x FA2 | {met} |")
        print(rows[-1], file=sys.stderr, flush=True)  # progress; the table goes to stdout
        del q, k, v
        torch.cuda.empty_cache()
    return rows, notes


def render(rows: list[str], notes: list[str], small: bool) -> str:
    lines = [
        "## Attention forward (GPU, bf16)",
        "",
        f"Device: {gpu_line()}. Date: {datetime.date.today().isoformat()}.",
        (f"FLOPs = 4 B H S^2 D, halved when causal. Median of {5 if small else 20} CUDA-event "
         f"timings per contender after 3 warm-up calls, in alternation. SDPA backends forced "
         f"with torch.nn.attention.sdpa_kernel. Command: `python benchmarks/{SCRIPT}.py"
         f"{' --small' if small else ''}`."),
        *notes,
        "",
        ("| case | hfport (ms) | SDPA FA2 (ms) | SDPA cuDNN (ms) | hfport TFLOP/s | FA2 TFLOP/s | "
         "cuDNN TFLOP/s | FA2 / hfport | cuDNN / hfport | target | met? |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="small shapes: a smoke run")
    parser.add_argument("--write", type=Path, metavar="PATH",
                        help="replace this script's section of PATH (e.g. docs/benchmarks.md)")
    args = parser.parse_args(argv)
    reason = why_no_gpu()
    if reason is not None:
        print(no_gpu_message(SCRIPT, reason))
        return 0
    rows, notes = run(args.small)
    section = render(rows, notes, args.small)
    print(section)
    if args.write is not None:
        from bench_loader import write_section
        write_section(args.write, section, SCRIPT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
