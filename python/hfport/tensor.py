"""DLPack import and numpy export for hfport.Tensor (the C++ side does the work)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hfport._hfport import Tensor, _tensor_from_capsule, _tensor_from_producer
from hfport.errors import DLPackError


def from_dlpack(x: Any) -> Tensor:
    """View any DLPack producer (torch, numpy, jax, ...) or an unused 'dltensor' capsule as an
    hfport.Tensor, without copying. The producer's memory stays alive while the view does.

    A CUDA producer is asked for its data on hfport's stream (the legacy default stream,
    ``__dlpack__(stream=1)``), so it is the producer that orders its work before hfport's. A bare
    capsule carries no such promise: the caller has made its data ready on that stream."""
    if hasattr(x, "__dlpack__"):
        return _tensor_from_producer(x)
    if type(x).__name__ == "PyCapsule":
        return _tensor_from_capsule(x)
    raise DLPackError(f"{type(x).__name__} is not a DLPack producer (it has no __dlpack__)")


def to_numpy(tensor: Tensor) -> np.ndarray:
    """A numpy array sharing the tensor's memory. BF16 and the F8 types, which numpy lacks, come
    out as ml_dtypes arrays (a view, still no copy); without ml_dtypes they raise DLPackError."""
    special = {"BF16": ("bfloat16", "U16"), "F8_E4M3": ("float8_e4m3fn", "U8"),
               "F8_E5M2": ("float8_e5m2", "U8")}
    if tensor.dtype not in special:
        return np.from_dlpack(tensor)
    name, carrier = special[tensor.dtype]
    try:
        import ml_dtypes
    except ImportError as e:
        raise DLPackError(
            f"numpy has no {tensor.dtype} dtype; install ml_dtypes (pip install ml_dtypes) to get "
            f"{tensor.dtype} arrays, or cast first: tensor.to('float32')"
        ) from e
    return np.from_dlpack(tensor.view_dtype(carrier)).view(getattr(ml_dtypes, name))


Tensor.numpy = to_numpy  # type: ignore[attr-defined]
