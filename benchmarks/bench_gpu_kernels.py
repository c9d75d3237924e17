"""Kernel benchmark (GPU, bf16): hfport.ops on CUDA tensors against the references of
BENCHMARKS.md, "GPU", measured in the same run on the same inputs, each also as a share of the
copy bandwidth torch's clone reaches on the same number of bytes in the same run.

| op | reference | target |
| RoPE in place on q and k, B1 S16k H32/8 D128 | transformers apply_rotary_pos_emb | >= 80% of copy |
| RMSNorm 8192 x 8192 | transformers LlamaRMSNorm | >= 85% of copy |
| selective scan B4 D2048 N16 L2048 | transformers' mamba_selective_scan (MambaMixer's slow path) | >= 20x |

Timing: torch.cuda.Event pairs around blocks of calls on the default stream (hfport launches on
the same legacy default stream), after warm-up calls, median over the repeats. Each case checks
hfport's output against the reference (relative L2 < 1e-2, the bf16 bar) before it is timed.
Without a GPU (no CUDA in hfport's build, no device, or no CUDA torch) the script says which and
exits 0.

    python benchmarks/bench_gpu_kernels.py                          # print the table
    python benchmarks/bench_gpu_kernels.py --write docs/benchmarks.md
    python benchmarks/bench_gpu_kernels.py --small                  # small shapes (tests)
"""

from __future__ import annotations

import datetime
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from bench_loader import source_revision, table_options, write_section
from gpu_timing import cuda_event_ms, gpu_line, no_gpu_message, no_gpu_reason
from hfport import ops
from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb
from transformers.models.mamba.modeling_mamba import mamba_selective_scan

# The torch path itself: the decorator in front of it would hand the call to mamba_ssm's CUDA
# kernel where that package is installed, which is not the slow path the target names.
SLOW_PATH_SCAN = getattr(mamba_selective_scan, "__wrapped__", mamba_selective_scan)
CHECK_TOLERANCE = 1e-2


@dataclass
class Case:
    label: str
    ours: Callable[[], Any]
    theirs: Callable[[], Any]
    traffic_bytes: int  # what the op must read and write at least
    target: str
    met: Callable[[float, float], bool]  # (ratio, % of copy) -> met?
    check: float  # relative L2 of hfport's output against the reference
    inner: int  # calls per timed block (fewer for slow calls)


def rel_l2(got: Any, want: torch.Tensor) -> float:
    got = torch.from_dlpack(got) if not isinstance(got, torch.Tensor) else got
    got, want = got.double(), want.double()
    return float((got - want).norm() / want.norm())


def gpu_time(fn: Callable[[], Any], inner: int, repeats: int, warmup: int = 2) -> float:
    """Median seconds per call over `repeats` blocks of `inner` calls, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    return statistics.median([cuda_event_ms(fn, inner) / 1e3 for _ in range(repeats)])


def nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def rope_case(small: bool) -> Case:
    seq = 1024 if small else 16384
    q = torch.randn(1, 32, seq, 128, device="cuda").bfloat16()
    k = torch.randn(1, 8, seq, 128, device="cuda").bfloat16()
    config = {"hidden_size": 32 * 128, "num_attention_heads": 32, "rope_theta": 500000.0}
    cos, sin = (torch.from_dlpack(t) for t in ops.rope_table(config, torch.arange(seq)[None]))
    cos, sin = cos.cuda().bfloat16(), sin.cuda().bfloat16()  # [1, S, 128], as LlamaRotaryEmbedding

    q_check, k_check = q.clone(), k.clone()
    ops.rope(q_check, k_check, cos, sin, inplace=True)
    want_q, want_k = apply_rotary_pos_emb(q, k, cos, sin)
    check = max(rel_l2(q_check, want_q), rel_l2(k_check, want_k))

    def ours():
        # Rotating again and again keeps the values' size: a rotation, up to bf16 rounding.
        return ops.rope(q, k, cos, sin, inplace=True)

    def theirs():
        return apply_rotary_pos_emb(q, k, cos, sin)

    return Case(f"RoPE in place on q and k, B1 S{seq} H32/8 D128", ours, theirs,
                2 * nbytes(q, k) + nbytes(cos, sin), ">= 80% of copy",
                lambda ratio, copy: copy >= 80.0, check, 10)


def rms_case(small: bool) -> Case:
    n = 1024 if small else 8192
    norm = LlamaRMSNorm(n, eps=1e-6).to(device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(n, device="cuda") * 0.5 + 1)
    norm.requires_grad_(False)
    weight_f32 = norm.weight.float()  # hfport's norm kernels read an f32 weight
    x = torch.randn(n, n, device="cuda").bfloat16()
    out = torch.empty_like(x)
    check = rel_l2(ops.rms_norm(x, weight_f32, 1e-6, out=out), norm(x))

    def ours():
        return ops.rms_norm(x, weight_f32, 1e-6, out=out)

    @torch.no_grad()
    def theirs():
        return norm(x)

    return Case(f"RMSNorm {n} x {n}", ours, theirs, 2 * nbytes(x) + nbytes(norm.weight),
                ">= 85% of copy", lambda ratio, copy: copy >= 85.0, check, 10)


def scan_case(small: bool) -> Case:
    batch, dim, n, length = (1, 256, 16, 256) if small else (4, 2048, 16, 2048)
    u = torch.randn(batch, dim, length, device="cuda").bfloat16()
    delta = (torch.randn(batch, dim, length, device="cuda") * 0.5).bfloat16()
    A = -torch.rand(dim, n, device="cuda") * 4 - 0.1
    B = torch.randn(batch, n, length, device="cuda").bfloat16()
    C = torch.randn(batch, n, length, device="cuda").bfloat16()
    D = torch.randn(dim, device="cuda")
    z = torch.randn(batch, dim, length, device="cuda").bfloat16()
    delta_bias = torch.randn(dim, device="cuda") * 0.1
    out = torch.empty_like(u)

    def ours():
        return ops.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True,
                                  out=out)

    def theirs():
        return SLOW_PATH_SCAN(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias,
                              delta_softplus=True)

    # Checked against the slow path in float32 on the same values: its bf16 run rounds the state
    # to bf16 at every step, which is its own error, not the one to check hfport against.
    want = SLOW_PATH_SCAN(u.float(), delta.float(), A, B.float(), C.float(), D=D, z=z.float(),
                          delta_bias=delta_bias, delta_softplus=True)
    check = rel_l2(ours(), want)
    del want
    return Case(f"selective scan B{batch} D{dim} N{n} L{length}, z, D, delta_bias, softplus",
                ours, theirs, nbytes(u, delta, z, B, C, out, A, D, delta_bias), ">= 20x",
                lambda ratio, copy: ratio >= 20.0, check, 1)


def copy_time(traffic_bytes: int, repeats: int) -> float:
    """Seconds for torch's clone of traffic_bytes / 2 bytes (it reads and writes them: the same
    traffic as the op)."""
    src = torch.empty(traffic_bytes // 2, dtype=torch.uint8, device="cuda")
    seconds = gpu_time(src.clone, 10, repeats)
    del src
    return seconds


def run(small: bool, repeats: int) -> str:
    lines = [
        "## Kernels (GPU, bf16)",
        "",
        (f"Device: {gpu_line()} ({source_revision()}). "
         f"Date: {datetime.date.today().isoformat()}."),
        (f"Median over {repeats} blocks of calls timed with CUDA events (10 calls per block; one "
         f"for the scans), after warm-up calls, on the same inputs. \"% of copy\": hfport's "
         f"bytes per second (the bytes the op must read and write, over its time) against "
         f"torch's clone of as many bytes in the same run. hfport writes into given outputs "
         f"(RoPE in place, out= for the others): it has no caching allocator, so a fresh output "
         f"would be a cudaMalloc and cudaFree per call; torch allocates from its cache. Command: "
         f"`python benchmarks/bench_gpu_kernels.py{' --small' if small else ''}`."),
        "",
        ("| op | hfport (ms) | reference (ms) | ratio (>1: hfport faster) | hfport GB/s | "
         "copy GB/s | % of copy | target | met? | rel. L2 vs reference |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for make in (rope_case, rms_case, scan_case):
        case = make(small)
        if not case.check < CHECK_TOLERANCE:
            raise AssertionError(f"{case.label}: hfport and the reference disagree "
                                 f"(rel. L2 {case.check:.2e})")
        t_ours = gpu_time(case.ours, case.inner, repeats)
        t_theirs = gpu_time(case.theirs, case.inner, repeats)
        t_copy = copy_time(case.traffic_bytes, repeats)
        ratio = t_theirs / t_ours
        ours_bw, copy_bw = case.traffic_bytes / t_ours, case.traffic_bytes / t_copy
        share = 100.0 * ours_bw / copy_bw
        lines.append(
            f"| {case.label} | {t_ours * 1e3:.3f} | {t_theirs * 1e3:.3f} | {ratio:.2f}x | "
            f"{ours_bw / 1e9:.0f} | {copy_bw / 1e9:.0f} | {share:.1f}% | {case.target} | "
            f"{'yes' if case.met(ratio, share) else '**no**'} | {case.check:.1e} |")
        del case
        torch.cuda.empty_cache()
    lines += ["", ("References: RoPE `transformers...modeling_llama.apply_rotary_pos_emb` on "
                   "[B, H, S, D] q and k with LlamaRotaryEmbedding's [B, S, D] bf16 tables (it "
                   "returns new tensors; hfport rotates in place); RMSNorm `LlamaRMSNorm` in bf16 "
                   "(hfport is given its weight as f32, once); selective scan "
                   "`transformers.models.mamba.modeling_mamba.mamba_selective_scan`'s torch path "
                   "(its loop over L, bf16 inputs), the scan MambaMixer runs without mamba_ssm. "
                   "The scan's rel. L2 is against that path in float32.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = table_options(__doc__).parse_args(argv)
    reason = no_gpu_reason()
    if reason is not None:
        print(no_gpu_message("bench_gpu_kernels", reason))
        return 0
    section = run(args.small, args.repeats or (3 if args.small else 11))
    sys.stdout.write(section)
    if args.write:
        write_section(args.write, section, "bench_gpu_kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
