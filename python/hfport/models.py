"""hfport.models: native forward passes of HuggingFace checkpoints.

>>> model = hfport.models.from_pretrained("llama_dir")          # strict load, float32
>>> logits = torch.from_dlpack(model(input_ids))                 # [batch, seq, vocab]
>>> out = model(input_ids, attention_mask=mask, output_hidden_states=True)
>>> tokens = torch.from_dlpack(model.generate(input_ids, max_new_tokens=32))   # greedy
"""

from __future__ import annotations

import os
from typing import Any

from hfport import _hfport
from hfport._hfport import Tensor


class Model:
    """A native model. Inputs are any DLPack producers (torch, numpy); outputs hfport.Tensor."""

    def __init__(self, native: _hfport.Model) -> None:
        self._native = native

    @property
    def family(self) -> str:
        return self._native.family

    @property
    def config(self) -> dict[str, Any]:
        """config.json with the family spec's defaults applied."""
        return self._native.config

    def __call__(self, input_ids: Any, attention_mask: Any = None,
                 output_hidden_states: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The head's logits ([batch, seq, vocab] for a language model), or for a base model
        without a head (BertModel) its last hidden state; with output_hidden_states, (that,
        hidden_states) as transformers orders them."""
        out = self._native.forward(input_ids, attention_mask, output_hidden_states)
        main = out["logits"] if "logits" in out else out["last_hidden_state"]
        if output_hidden_states:
            return main, out["hidden_states"]
        return main

    def forward(self, input_ids: Any, attention_mask: Any = None,
                output_hidden_states: bool = False) -> dict[str, Any]:
        """Everything the model computes: logits (a head's output), last_hidden_state, pooled
        (a BERT-like base model with its pooler), hidden_states (when asked)."""
        return self._native.forward(input_ids, attention_mask, output_hidden_states)

    def generate(self, input_ids: Any, max_new_tokens: int) -> Tensor:
        """Greedy decoding with the cache: [batch, seq + max_new_tokens] token ids."""
        return self._native.generate(input_ids, max_new_tokens)

    def __repr__(self) -> str:
        return f"hfport.models.Model(family={self.family!r})"


def from_pretrained(path: str | os.PathLike, dtype: str = "float32", device: str = "cpu") -> Model:
    """Load a checkpoint strictly through its family spec and build the native model.

    device "cuda" / "cuda:N" runs the llama family and mamba on that GPU (the parameters are
    loaded on the host and moved once; outputs are CUDA tensors). Other families, a build without
    CUDA and a machine without a device raise DeviceError saying which."""
    return Model(_hfport._load_model(os.fspath(path), dtype, device))


def native_families() -> list[str]:
    """The families with a native model."""
    return list(_hfport._native_families())
