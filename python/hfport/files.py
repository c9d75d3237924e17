"""safetensors.torch's load_file / save_file, on hfport's reader and writer.

>>> state = hfport.load_file("model.safetensors")          # dict[str, torch.Tensor], zero-copy
>>> hfport.save_file({"w": torch.ones(2, 3)}, "out.safetensors", metadata={"format": "pt"})
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hfport._hfport import Checkpoint, Tensor, write_safetensors
from hfport.tensor import _ML_DTYPES, from_dlpack


def load_file(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, Any]:
    """Every tensor of a safetensors file (or sharded folder / index.json) as torch tensors, like
    ``safetensors.torch.load_file``. On the CPU they are views of the mapped file (no copy; the
    file is mapped MAP_PRIVATE, so writing to one never changes the file); device "cuda" uploads
    them in one staged pass (Checkpoint.load_all)."""
    from torch.utils.dlpack import from_dlpack

    with Checkpoint.open(os.fspath(path)) as ck:
        return {name: from_dlpack(t) for name, t in ck.load_all(device=str(device)).items()}


def _as_tensor(name: str, value: Any) -> Tensor:
    tensor = value if isinstance(value, Tensor) else _import(name, value)
    return tensor if tensor.device == "cpu" else tensor.to_device("cpu")


def _import(name: str, value: Any) -> Tensor:
    if hasattr(value, "detach"):  # torch: a tensor that requires grad cannot cross DLPack
        value = value.detach()
    dtype = getattr(value, "dtype", None)
    for safetensors_name, (ml_name, carrier) in _ML_DTYPES.items():
        # numpy cannot export ml_dtypes arrays through DLPack: their bytes can.
        if getattr(dtype, "name", None) == ml_name and hasattr(value, "view"):
            carrier_name = {"U16": "uint16", "U8": "uint8"}[carrier]
            return from_dlpack(value.view(carrier_name)).view_dtype(safetensors_name)
    if not hasattr(value, "__dlpack__"):
        raise TypeError(f"save_file: tensor '{name}' is a {type(value).__name__}; expected an "
                        f"hfport.Tensor, a torch tensor, a numpy array or another DLPack producer")
    return from_dlpack(value)


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike[str],
              metadata: Mapping[str, str] | None = None) -> None:
    """Write a dict of hfport Tensors, torch tensors or numpy arrays (ml_dtypes bfloat16 / float8
    included) as one safetensors file, like ``safetensors.torch.save_file``. Names are written in
    sorted order; the file appears atomically (written beside `path`, then renamed)."""
    pairs = [(name, _as_tensor(name, tensors[name])) for name in sorted(tensors)]
    write_safetensors(os.fspath(path), pairs, dict(metadata or {}))
