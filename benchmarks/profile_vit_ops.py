"""Where a ViT-B/16 batch-8 forward spends its time, op by op (issue 13's "profile the forward"):
each op the native block runs, at the block's shapes, through hfport.ops and through the torch
ops that transformers' eager `ViTLayer` runs, with the count per forward. Not a `make bench`
table: the full forwards are bench_vision.py's.

hfport's qkv is one fused GEMM (768 -> 2304); transformers runs three 768 -> 768 linears. Its
attention is matmul + softmax + matmul as `eager_attention_forward`. The residual adds are left
out (hfport's in-place add has no Python entry point). Each op is timed in blocks (hfport's
calls, then torch's: torch's OpenMP workers spin after a call), three rounds, median.

    python benchmarks/profile_vit_ops.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

B, S, H, D, HID, FF = 8, 197, 12, 64, 768, 3072


def cases() -> dict[str, tuple[int, Callable[[], Any], Callable[[], Any]]]:
    from hfport import ops

    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    x, inner, qkv = r(B, S, HID), r(B, S, FF), r(B, S, 3 * HID)
    w_qkv, b_qkv = r(3 * HID, HID) * 0.03, r(3 * HID)
    w_q, w_k, w_v = (w_qkv[i * HID:(i + 1) * HID].contiguous() for i in range(3))
    b_q, b_k, b_v = (b_qkv[i * HID:(i + 1) * HID].contiguous() for i in range(3))
    w_o, b_o = r(HID, HID) * 0.03, r(HID)
    w_up, b_up, w_dn, b_dn = r(FF, HID) * 0.03, r(FF), r(HID, FF) * 0.02, r(HID)
    ln_w, ln_b = r(HID), r(HID)
    q4, k4, v4 = (qkv[..., i * HID:(i + 1) * HID].view(B, S, H, D) for i in range(3))

    def torch_attention() -> torch.Tensor:
        q, k, v = q4.transpose(1, 2), k4.transpose(1, 2), v4.transpose(1, 2)
        p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * D ** -0.5, dim=-1)
        return torch.matmul(p, v).transpose(1, 2).reshape(B, S, HID)

    return {  # op: (calls per forward, hfport, torch)
        "layer_norm 1576x768": (24, lambda: ops.layer_norm(x, ln_w, ln_b, eps=1e-12),
                                lambda: F.layer_norm(x, (HID,), ln_w, ln_b, 1e-12)),
        "qkv GEMM 1576x768 -> 2304 (+bias)": (
            12, lambda: ops.linear(x, w_qkv, b_qkv),
            lambda: (F.linear(x, w_q, b_q), F.linear(x, w_k, b_k), F.linear(x, w_v, b_v))),
        "attention B8 H12 S197 D64": (12, lambda: ops.attention(q4, k4, v4, layout="bshd"),
                                      torch_attention),
        "out GEMM 1576x768 -> 768 (+bias)": (12, lambda: ops.linear(x, w_o, b_o),
                                             lambda: F.linear(x, w_o, b_o)),
        "up GEMM 1576x768 -> 3072 (+bias+GELU)": (
            12, lambda: ops.linear(x, w_up, b_up, activation="gelu"),
            lambda: F.gelu(F.linear(x, w_up, b_up))),
        "of which: up GEMM only (+bias)": (0, lambda: ops.linear(x, w_up, b_up),
                                           lambda: F.linear(x, w_up, b_up)),
        "of which: GELU (erf) 1576x3072": (0, lambda: ops.gelu(inner), lambda: F.gelu(inner)),
        "down GEMM 1576x3072 -> 768 (+bias)": (12, lambda: ops.linear(inner, w_dn, b_dn),
                                               lambda: F.linear(inner, w_dn, b_dn)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["HFPORT_NUM_THREADS"] = str(args.threads)  # read when hfport's pool starts
    table = cases()
    times: dict[str, tuple[list[float], list[float]]] = {op: ([], []) for op in table}
    load_before = os.getloadavg()[0]
    with torch.no_grad():
        for _ in range(3):
            for op, (_, ours, theirs) in table.items():
                for fn, samples in ((ours, times[op][0]), (theirs, times[op][1])):
                    fn()
                    for _ in range(args.repeats):
                        start = time.perf_counter()
                        fn()
                        samples.append(time.perf_counter() - start)
    print(f"Threads {args.threads} (torch and hfport); load average (1 min) before "
          f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}.")
    print("| op (ViT-B/16, batch 8) | per forward | hfport ms | torch ms | torch / hfport | "
          "hfport ms per forward | torch ms per forward |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    total = [0.0, 0.0]
    for op, (count, _, _) in table.items():
        ours, theirs = (statistics.median(t) * 1e3 for t in times[op])
        total[0] += count * ours
        total[1] += count * theirs
        print(f"| {op} | {count or '-'} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f}x | "
              f"{count * ours:.0f} | {count * theirs:.0f} |")
    print(f"| sum of the counted ops | | | | {total[1] / total[0]:.2f}x | {total[0]:.0f} | "
          f"{total[1]:.0f} |")


if __name__ == "__main__":
    main()
