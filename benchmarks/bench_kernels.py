"""Kernel benchmark (CPU, float32): hfport.ops against the references of BENCHMARKS.md,
"Kernels (CPU)", measured in the same run on the same inputs.

| op | reference |
| attention B1 H8 S1024 D64, causal and not; GQA 8/2 | torch.nn.functional.scaled_dot_product_attention |
| attention decode B1 H32/8 Sq1 Sk4096 D128 | the same, enable_gqa |
| RoPE on q and k, B1 S2048 H32/8 D128 | transformers apply_rotary_pos_emb |
| selective scan B1 D1536 N16 L1024, z, D, delta_bias, softplus | transformers' mamba_selective_scan (the slow path's Python loop over L) |
| RMSNorm 4096 x 4096 | transformers LlamaRMSNorm |

torch and hfport use the same number of threads. Each case checks that both outputs agree
(relative L2 < 1e-5) before timing; hfport and the reference are timed in alternation after a
warm-up, median of the repeats.

    python benchmarks/bench_kernels.py                          # print the table
    python benchmarks/bench_kernels.py --write docs/benchmarks.md
    python benchmarks/bench_kernels.py --small                  # small shapes, seconds (tests)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from bench_loader import machine_line, table_options, write_section  # shared by all
from hfport import ops
from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb
from transformers.models.mamba.modeling_mamba import mamba_selective_scan


def median_pair(hfport_fn: Callable[[], Any], reference_fn: Callable[[], Any],
                repeats: int, rounds: int = 3) -> tuple[float, float]:
    """Median per-call times. Calls are timed in blocks of `repeats` (hfport's, then the
    reference's), `rounds` times over: right after a torch op, torch's OpenMP workers spin-wait
    on the cores for a while, and a call timed in their wake measures that contention rather than
    the kernel (the table's note gives the interleaved figures too)."""
    hfport_fn(), reference_fn()
    ours, theirs = [], []
    for _ in range(rounds):
        for fn, times in ((hfport_fn, ours), (reference_fn, theirs)):
            fn()
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def interleaved_ratio(hfport_fn: Callable[[], Any], reference_fn: Callable[[], Any],
                      repeats: int) -> float:
    """reference / hfport when every hfport call directly follows a reference call."""
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        reference_fn()
        theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        hfport_fn()
        ours.append(time.perf_counter() - start)
    return statistics.median(theirs) / statistics.median(ours)


def rel_l2(a: Any, b: torch.Tensor) -> float:
    a = torch.from_dlpack(a) if not isinstance(a, torch.Tensor) else a
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def attention_levels() -> list[str]:
    """The attention micro-kernel sets this CPU runs, best first, as attention.cpp picks them
    (HFPORT_ATTENTION_KERNELS names a lesser one; "plain" is the scalar fallback, not timed)."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    levels = []
    if "avx2" in flags and "fma" in flags:
        levels = ["avx512", "avx2"] if "avx512f" in flags else ["avx2"]
    return levels or ["plain"]


def with_attention_kernels(level: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """fn with HFPORT_ATTENTION_KERNELS set to `level` while it runs (read on every call)."""
    def run() -> Any:
        old = os.environ.get("HFPORT_ATTENTION_KERNELS")
        os.environ["HFPORT_ATTENTION_KERNELS"] = level
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["HFPORT_ATTENTION_KERNELS"]
            else:
                os.environ["HFPORT_ATTENTION_KERNELS"] = old
    return run


def cases(small: bool) -> list[tuple[str, str, float, Callable, Callable, Any]]:
    """(label, target text, target ratio, hfport fn, reference fn, check value). Attention runs
    once per SIMD level the CPU has (only the best with --small); its label names the level."""
    g = torch.Generator().manual_seed(0)
    out = []
    S = 256 if small else 1024
    levels = attention_levels()[:1] if small else attention_levels()
    for level, (label, kv_heads, causal) in ((level, case) for level in levels for case in (
            ("non-causal", 8, False), ("causal", 8, True), ("GQA 8/2, causal", 2, True))):
        q = torch.randn(1, 8, S, 64, generator=g)
        k = torch.randn(1, kv_heads, S, 64, generator=g)
        v = torch.randn(1, kv_heads, S, 64, generator=g)

        ours = with_attention_kernels(
            level, lambda q=q, k=k, v=v, causal=causal: ops.attention(q, k, v, causal=causal))

        def theirs(q=q, k=k, v=v, causal=causal, gqa=kv_heads != 8):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)

        out.append((f"attention B1 H8 S{S} D64, {label}, {level}", ">= 1.0x", 1.0, ours, theirs,
                    rel_l2(ours(), theirs())))

    # Decode: one query per head against a KV cache (GQA 32/8, LLaMA-3-8B's heads).
    cache = 1024 if small else 4096
    for level in levels:
        q = torch.randn(1, 32, 1, 128, generator=g)
        k = torch.randn(1, 8, cache, 128, generator=g)
        v = torch.randn(1, 8, cache, 128, generator=g)
        ours = with_attention_kernels(level, lambda q=q, k=k, v=v: ops.attention(q, k, v))

        def theirs(q=q, k=k, v=v):
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

        out.append((f"attention decode B1 H32/8 Sq1 Sk{cache} D128, {level}", ">= 1.0x", 1.0,
                    ours, theirs, rel_l2(ours(), theirs())))

    S = 512 if small else 2048
    q = torch.randn(1, 32, S, 128, generator=g)
    k = torch.randn(1, 8, S, 128, generator=g)
    config = {"hidden_size": 32 * 128, "num_attention_heads": 32, "rope_theta": 10000.0}
    cos, sin = (torch.from_dlpack(t) for t in ops.rope_table(config, torch.arange(S)[None]))

    def rope_ours():
        return ops.rope(q, k, cos, sin)

    def rope_theirs():
        return apply_rotary_pos_emb(q, k, cos, sin)

    check = max(rel_l2(a, b) for a, b in zip(rope_ours(), rope_theirs(), strict=True))
    out.append((f"RoPE on q and k, B1 S{S} H32/8 D128", ">= 3x", 3.0, rope_ours, rope_theirs, check))

    D, L = (384, 256) if small else (1536, 1024)
    u = torch.randn(1, D, L, generator=g)
    delta = torch.randn(1, D, L, generator=g) * 0.5
    A = -torch.rand(D, 16, generator=g) * 4 - 0.1
    B = torch.randn(1, 16, L, generator=g)
    C = torch.randn(1, 16, L, generator=g)
    Dskip = torch.randn(D, generator=g)
    z = torch.randn(1, D, L, generator=g)
    delta_bias = torch.randn(D, generator=g) * 0.1

    def scan_ours():
        return ops.selective_scan(u, delta, A, B, C, Dskip, z, delta_bias, delta_softplus=True)

    def scan_theirs():
        return mamba_selective_scan(u, delta, A, B, C, D=Dskip, z=z, delta_bias=delta_bias,
                                    delta_softplus=True)

    # The check is against the same reference run in float64: in float32 its first call in a
    # process varies from run to run (rel. L2 1.3e-7, 5.83e-5 or 5.87e-5 against hfport's
    # unchanging output, seen with torch 2.13 on 2 threads), which made this check flaky.
    exact = mamba_selective_scan(u.double(), delta.double(), A.double(), B.double(), C.double(),
                                 D=Dskip.double(), z=z.double(), delta_bias=delta_bias.double(),
                                 delta_softplus=True)
    out.append((f"selective scan B1 D{D} N16 L{L}, z, D, delta_bias, softplus", ">= 20x", 20.0,
                scan_ours, scan_theirs, rel_l2(scan_ours(), exact)))

    n = 1024 if small else 4096
    x = torch.randn(n, n, generator=g)
    norm = LlamaRMSNorm(n, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(n, generator=g))

    def rms_ours():
        return ops.rms_norm(x, norm.weight.detach(), 1e-6)

    @torch.no_grad()
    def rms_theirs():
        return norm(x)

    out.append((f"RMSNorm {n} x {n}", ">= 2x", 2.0, rms_ours, rms_theirs,
                rel_l2(rms_ours(), rms_theirs())))
    return out


def attention_gflop(label: str) -> float:
    """Multiply-adds x 2 of an attention row's case: q k^T and p v over the visible keys."""
    seq = int(label.split(" S", 1)[1].split(" ", 1)[0])
    causal = "causal" in label and "non-causal" not in label
    visible = seq * (seq + 1) / 2 if causal else seq * seq
    return 2 * 2 * 8 * 64 * visible / 1e9


def sgemm_gflops(size: int, repeats: int = 5) -> float:
    """torch.mm's float32 rate on [size, size] @ [size, size]: the practical FMA ceiling of this
    CPU at this thread count (the BLAS torch ships is tuned to within a few percent of it)."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def roofline_lines(attention_times: list[tuple[str, float, float]], small: bool) -> list[str]:
    """Attention's float rate against the sgemm ceiling, so a target can be read against what
    the machine can do at all."""
    ceiling = sgemm_gflops(1024 if small else 2048)
    lines = ["", (f"Attention against this CPU's float32 ceiling: torch.mm on "
                  f"{1024 if small else 2048}^3 runs at {ceiling:.0f} GFLOP/s here (same run). "
                  f"GFLOP/s count the two matrix products over the visible keys (4 B H S_k D "
                  f"per query row)."), "",
             ("| op | hfport GFLOP/s | reference GFLOP/s | reference, % of ceiling | "
              "1.2x the reference, % of ceiling |"), "| --- | ---: | ---: | ---: | ---: |"]
    for label, t_ours, t_theirs in attention_times:
        work = attention_gflop(label)
        ours, theirs = work / t_ours, work / t_theirs
        lines.append(f"| {label} | {ours:.0f} | {theirs:.0f} | {100 * theirs / ceiling:.0f}% | "
                     f"{120 * theirs / ceiling:.0f}% |")
    return lines


def run(small: bool, repeats: int) -> str:
    lines = [
        "## Kernels (CPU, float32)",
        "",
        machine_line(),
        (f"Median per-call time over 3 rounds of {repeats} back-to-back calls each (hfport's "
         f"block, then the reference's), after a warm-up call, on the same inputs; torch and "
         f"hfport on the same thread count. The last column times each hfport call right after "
         f"a reference call instead: torch's OpenMP workers spin-wait after an op and take the "
         f"cores from the next one, which costs the short ops most (OMP_WAIT_POLICY=PASSIVE "
         f"avoids it). Command: `python benchmarks/bench_kernels.py{' --small' if small else ''}`."),
        "",
        "| op | hfport (ms) | reference (ms) | ratio (>1: hfport faster) | target | met? | rel. L2 vs reference | ratio, interleaved |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    attention_times = []
    for label, target, needed, ours, theirs, check in cases(small):
        if not check < 1e-5:
            raise AssertionError(f"{label}: hfport and the reference disagree (rel. L2 {check:.2e})")
        t_ours, t_theirs = median_pair(ours, theirs, repeats)
        if label.startswith("attention B"):
            attention_times.append((label, t_ours, t_theirs))
        ratio = t_theirs / t_ours
        mixed = interleaved_ratio(ours, theirs, repeats)
        lines.append(f"| {label} | {t_ours * 1e3:.2f} | {t_theirs * 1e3:.2f} | {ratio:.2f}x | "
                     f"{target} | {'yes' if ratio >= needed else '**no**'} | {check:.1e} | "
                     f"{mixed:.2f}x |")
    lines += roofline_lines(attention_times, small)
    lines += ["", ("SIMD: attention picks its micro-kernels at run time; each attention row names "
                   "the set it ran (every set this CPU has, the lower ones forced with "
                   "HFPORT_ATTENTION_KERNELS). RoPE's rotation, the scan and the norms' row loops are "
                   "compiled three times by the compiler (x86-64-v4 = AVX-512, v3 = AVX2 + FMA, "
                   "and the SSE2 baseline; kernels/cpu/float_math.h) and the loader picks the best "
                   "this CPU has; that choice cannot be forced at run time, so their rows "
                   "name no level."),
              "", ("References: attention `torch.nn.functional.scaled_dot_product_attention` "
              "(`enable_gqa` for GQA; the decode rows, one query per head against a cache, read "
              "each key and value once on both sides, so they are bound by memory, not FMAs, and "
              "stay out of the ceiling table); RoPE `transformers...modeling_llama.apply_rotary_pos_emb`; "
              "selective scan `transformers.models.mamba.modeling_mamba.mamba_selective_scan` (the slow "
              "path: in 5.17 MambaMixer has no slow_forward, the mixer calls this loop over L; its "
              "rel. L2 column is against the same function in float64); "
              "RMSNorm `LlamaRMSNorm`.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = table_options(__doc__).parse_args(argv)
    section = run(args.small, args.repeats or (3 if args.small else 9))
    sys.stdout.write(section)
    if args.write:
        write_section(args.write, section, "bench_kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
