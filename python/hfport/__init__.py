"""hfport: port HuggingFace checkpoints into native C++/CUDA code and prove the port is right.

>>> import hfport, torch
>>> ck = hfport.open("model_dir")                 # a .safetensors file, a folder or an index.json
>>> w = torch.from_dlpack(ck["embeddings.word_embeddings.weight"])   # zero-copy
>>> state, report = hfport.load("model_dir")      # native names, strict, with a report
>>> on_gpu = ck.load_all(device="cuda")           # every tensor, one staged upload
"""

import types as _types

from hfport import errors, models, ops
from hfport._hfport import Checkpoint, Tensor, __version__, built_with_cuda, cuda_device_count
from hfport.dtypes import dtype_name
from hfport.files import load_file, save_file
from hfport.load import LoadReport, families, family_spec, load, map_checkpoint
from hfport.tensor import from_dlpack, to_numpy


def __getattr__(name: str) -> _types.ModuleType:
    # hfport.parity imports torch and transformers: loaded on first use, not by `import hfport`.
    if name == "parity":
        import importlib

        return importlib.import_module("hfport.parity")
    raise AttributeError(f"module 'hfport' has no attribute {name!r}")


def open(path: str, *, mmap: bool = True) -> Checkpoint:
    """Map and validate a checkpoint: a .safetensors file, a sharded folder, or an index.json.

    Tensors are zero-copy views of the mapped files. A mapped file truncated while a view of it is
    read kills the process with SIGBUS, as with numpy.memmap and safetensors; hfport refuses new
    views of a file whose size changed. mmap=False reads the files into memory instead, for files
    that may change while in use (a network file system, a checkpoint being rewritten).

    The checkpoint is a context manager (``with hfport.open(p) as ck:``), as safetensors'
    safe_open is; leaving the block closes it. Tensors taken from it stay valid after that.
    """
    return Checkpoint.open(str(path), mmap=mmap)


__all__ = [
    "Checkpoint",
    "LoadReport",
    "Tensor",
    "__version__",
    "built_with_cuda",
    "cuda_device_count",
    "dtype_name",
    "errors",
    "families",
    "family_spec",
    "from_dlpack",
    "load",
    "load_file",
    "map_checkpoint",
    "models",
    "open",
    "ops",
    "save_file",
    "to_numpy",
]
