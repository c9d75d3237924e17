"""Native model benchmark (CPU, float32): hfport's forward against transformers' on the same
checkpoint and inputs (issue 5's performance rows).

- LLaMA-shaped: hidden 1024, 8 layers, 16 heads / 4 kv heads, intermediate 2816, vocab 32000,
  batch 1, sequence 512; transformers with its default attention (sdpa).
- Mamba: hidden 768, 4 layers, state 16, batch 1, sequence 512; transformers' CPU path (the
  Python scan loop: mamba-ssm's CUDA kernels do not run on a CPU).

Random weights (fixed seed) saved with save_pretrained into a temporary folder; each case checks
that the logits agree (relative L2 < 1e-4) before timing; both sides on the same thread count,
timed in blocks (hfport's calls, then transformers') after a warm-up, median of the repeats.

    python benchmarks/bench_models.py                          # print the table
    python benchmarks/bench_models.py --write docs/benchmarks.md
    python benchmarks/bench_models.py --small                  # tiny models, seconds (tests)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hfport
import torch
import transformers
from bench_kernels import median_pair  # block timing, shared with the kernel table
from bench_loader import (  # shared by all
    machine_line,
    main_with_workdir,
)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

LLAMA = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
             num_attention_heads=16, num_key_value_heads=4)
MAMBA = dict(vocab_size=32000, hidden_size=768, num_hidden_layers=4, state_size=16)
SMALL_LLAMA = dict(vocab_size=512, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2)
SMALL_MAMBA = dict(vocab_size=512, hidden_size=64, num_hidden_layers=2, state_size=8)


def build(folder: Path, model_cls: Any, config: Any) -> Any:
    torch.manual_seed(0)
    model = model_cls(config).eval()
    model.save_pretrained(folder)
    return model


def case(folder: Path, label: str, hf_model: Any, seq: int, repeats: int) -> str:
    native = hfport.models.from_pretrained(folder)
    ids = torch.randint(0, hf_model.config.vocab_size, (1, seq), generator=torch.Generator().manual_seed(1))

    def ours():
        return native(ids).logits

    @torch.no_grad()
    def theirs():
        return hf_model(ids).logits

    got, want = torch.from_dlpack(ours()), theirs()
    error = ((got.double() - want.double()).norm() / want.double().norm()).item()
    if not error < 1e-4:
        raise AssertionError(f"{label}: native and transformers logits differ (rel. L2 {error:.2e})")
    t_ours, t_theirs = median_pair(ours, theirs, repeats, rounds=1)
    ratio = t_theirs / t_ours
    met = "yes" if ratio >= 1.0 else "**no**"
    return (f"| {label} | {t_ours * 1e3:.0f} | {t_theirs * 1e3:.0f} | {ratio:.2f}x | >= 1.0x | "
            f"{met} | {error:.1e} |")


def run(workdir: Path, small: bool, repeats: int) -> str:
    seq = 64 if small else 512
    rows = []
    llama_cfg = transformers.LlamaConfig(**(SMALL_LLAMA if small else LLAMA), tie_word_embeddings=False)
    llama = build(workdir / "llama", transformers.LlamaForCausalLM, llama_cfg)
    rows.append(case(workdir / "llama", f"LLaMA-shaped forward, hidden {llama_cfg.hidden_size}, "
                     f"{llama_cfg.num_hidden_layers} layers, {llama_cfg.num_attention_heads}/"
                     f"{llama_cfg.num_key_value_heads} heads, seq {seq}", llama, seq, repeats))
    if "mamba" in hfport.models.native_families():
        mamba_cfg = transformers.MambaConfig(**(SMALL_MAMBA if small else MAMBA))
        mamba = build(workdir / "mamba", transformers.MambaForCausalLM, mamba_cfg)
        rows.append(case(workdir / "mamba", f"Mamba forward, hidden {mamba_cfg.hidden_size}, "
                         f"{mamba_cfg.num_hidden_layers} layers, state {mamba_cfg.state_size}, "
                         f"seq {seq}", mamba, seq, repeats))
    lines = [
        "## Native models (CPU, float32)",
        "",
        machine_line(),
        (f"Batch 1, random weights; median of {repeats} back-to-back calls after a warm-up call, "
        f"hfport's block then transformers'; the same thread count on both sides. Command: "
        f"`python benchmarks/bench_models.py{' --small' if small else ''}`."),
        "",
        "| model | hfport (ms) | transformers (ms) | ratio (>1: hfport faster) | target | met? | logits rel. L2 |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
        *rows,
        "",
        ("Reference: `LlamaForCausalLM` / `MambaForCausalLM` forward under `torch.no_grad()`, "
        "transformers' default attention (sdpa); Mamba on the CPU runs transformers' slow path."),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return main_with_workdir(argv, __doc__, "bench_models", run, (2, 5))

if __name__ == "__main__":
    sys.exit(main())
