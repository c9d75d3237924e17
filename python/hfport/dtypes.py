"""The one place a dtype given from Python becomes hfport's name for it.

Every ``dtype=`` hfport takes (hfport.load, hfport.models.from_pretrained, Checkpoint.load_all,
Tensor.to, Tensor.view_dtype) accepts the same things: a string ("bf16", "bfloat16", "float16",
"f32", "F32", "torch.float16"), a torch dtype (torch.bfloat16), a numpy dtype or scalar type
(np.float16, np.dtype("float32")) or an ml_dtypes type (ml_dtypes.bfloat16). The string aliases
live in C++ (``dtype_from_user_name``), where the C++ API needs them too; this function only turns
the torch / numpy objects into one of those strings.
"""

from __future__ import annotations

from typing import Any

from hfport._hfport import _dtype_from_name
from hfport.errors import DTypeError


def dtype_name(dtype: Any) -> str:
    """The safetensors name ("BF16", "F32", ...) of `dtype`; DTypeError (one line) when it names
    no dtype hfport has."""
    if isinstance(dtype, str):
        return _dtype_from_name(dtype)
    kind = type(dtype)
    if kind.__module__ == "torch" and kind.__name__ == "dtype":
        return _dtype_from_name(str(dtype))  # "torch.bfloat16"
    if dtype is not None and not isinstance(dtype, bool | int | float):
        import numpy as np

        try:
            # np.float16, np.dtype("f2"), ml_dtypes.bfloat16 (a numpy scalar type): their names
            # ("float16", "bfloat16", "float8_e4m3fn") are all names the C++ side knows.
            name = np.dtype(dtype).name
        except (TypeError, ValueError):
            pass
        else:
            return _dtype_from_name(name)
    raise DTypeError(f"dtype must be a name ('bf16', 'float32', 'F16', ...) or a torch, numpy "
                     f"or ml_dtypes dtype, got {kind.__name__} {dtype!r}")


def optional_dtype_name(dtype: Any) -> str | None:
    """dtype_name, with None (no cast) kept as None."""
    return None if dtype is None else dtype_name(dtype)
