"""DLPack import, numpy export and the quick-poking surface of hfport.Tensor (repr with values,
tolist, item, float(t), ==). The C++ side does the work; numpy formats and compares."""

from __future__ import annotations

from typing import Any

import numpy as np

from hfport._hfport import Tensor, _tensor_from_capsule, _tensor_from_producer
from hfport.errors import DLPackError


def from_dlpack(x: Any) -> Tensor:
    """View any DLPack producer (torch, numpy, jax, ...) or an unused 'dltensor' /
    'dltensor_versioned' capsule as an hfport.Tensor, without copying. The producer's memory stays
    alive while the view does; memory lent read-only (a numpy array with writeable=False) gives a
    tensor whose ``read_only`` is True.

    A CUDA producer is asked for its data on hfport's stream (the legacy default stream,
    ``__dlpack__(stream=1)``), so it is the producer that orders its work before hfport's. A bare
    capsule carries no such promise: the caller has made its data ready on that stream."""
    if hasattr(x, "__dlpack__"):
        return _tensor_from_producer(x)
    if type(x).__name__ == "PyCapsule":
        return _tensor_from_capsule(x)
    raise DLPackError(f"{type(x).__name__} is not a DLPack producer (it has no __dlpack__)")


# numpy has no BF16 or float8 dtypes: ml_dtypes' are used, over an integer carrier of the same size.
_ML_DTYPES = {"BF16": ("bfloat16", "U16"), "F8_E4M3": ("float8_e4m3fn", "U8"),
              "F8_E5M2": ("float8_e5m2", "U8")}

# The names the repr shows (torch's and numpy's), by safetensors name.
_DISPLAY_NAMES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
                  "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U32": "uint32",
                  "F32": "float32", "I64": "int64", "U64": "uint64", "F64": "float64",
                  "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def to_numpy(tensor: Tensor) -> np.ndarray:
    """A numpy array sharing the tensor's memory (writable unless the tensor is read-only). BF16
    and the F8 types, which numpy lacks, come out as ml_dtypes arrays (a view, still no copy);
    without ml_dtypes they raise DLPackError. A CUDA tensor raises: move it first
    (tensor.to("cpu")) or use np.asarray(tensor), which copies it."""
    if tensor.dtype not in _ML_DTYPES:
        return np.from_dlpack(tensor)
    name, carrier = _ML_DTYPES[tensor.dtype]
    try:
        import ml_dtypes
    except ImportError as e:
        raise DLPackError(
            f"numpy has no {tensor.dtype} dtype; install ml_dtypes (pip install ml_dtypes) to get "
            f"{tensor.dtype} arrays, or cast first: tensor.to('float32')"
        ) from e
    return np.from_dlpack(tensor.view_dtype(carrier)).view(getattr(ml_dtypes, name))


def _array(self: Tensor, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    """numpy 2's __array__: np.asarray(t) is a view of the tensor's memory (BF16 / F8 as ml_dtypes
    arrays); copy=True always copies; copy=False raises ValueError where a copy is needed (a CUDA
    tensor, another dtype)."""
    copied = False
    host = self
    if self.device != "cpu":
        if copy is False:
            raise ValueError(f"np.asarray(copy=False) of a tensor on {self.device}: numpy arrays "
                             f"live on the host, so that needs a copy")
        host, copied = self.to_device("cpu"), True
    array = to_numpy(host)
    if dtype is not None and np.dtype(dtype) != array.dtype:
        if copy is False:
            raise ValueError(f"np.asarray(copy=False) of a {self.dtype} tensor as "
                             f"{np.dtype(dtype)} needs a copy")
        return array.astype(dtype)
    return array.copy() if copy and not copied else array


def _edges(array: np.ndarray, edgeitems: int) -> np.ndarray:
    """The elements a summarised print shows: the first and last `edgeitems` along each long
    dimension (a small copy, whatever the array's size)."""
    for axis, size in enumerate(array.shape):
        if size > 2 * edgeitems:
            array = array.take(np.r_[0:edgeitems, size - edgeitems:size], axis=axis)
    return array


_THRESHOLD, _EDGEITEMS, _PRECISION = 1000, 3, 4


def _values_text(array: np.ndarray, prefix: str) -> str:
    options: dict[str, Any] = {"separator": ", ", "prefix": prefix, "threshold": _THRESHOLD,
                               "edgeitems": _EDGEITEMS, "precision": _PRECISION,
                               "max_line_width": 100}
    if array.dtype.kind in "biufc":  # numpy's own types: numpy formats them, aligned
        return np.array2string(array, **options)
    # ml_dtypes (BF16, F8): numpy formats them with str(); format them as float32 instead, with
    # one notation and width chosen from the values that will be shown.
    sample = _edges(array, _EDGEITEMS).astype(np.float32) if array.size > _THRESHOLD else \
        array.astype(np.float32)
    if array.size <= _THRESHOLD:
        return np.array2string(sample, **options)
    finite = np.abs(sample[np.isfinite(sample)])
    nonzero = finite[finite > 0]
    scientific = nonzero.size > 0 and (nonzero.max() >= 1e8 or nonzero.min() < 1e-4 or
                                       nonzero.max() / nonzero.min() >= 1e3)
    spec = f".{_PRECISION}e" if scientific else f".{_PRECISION}f"
    width = max(len(format(float(v), spec)) for v in sample.flat)
    options["formatter"] = {"all": lambda v: format(float(v), spec).rjust(width)}
    return np.array2string(array, **options)


def _repr(self: Tensor) -> str:
    """tensor([[...]], dtype=bfloat16) as torch prints it: values (summarised with ... past 1000
    elements), the dtype, and the device when it is not the CPU."""
    host = self if self.device == "cpu" else self.to_device("cpu")
    prefix = "tensor("
    text = prefix + _values_text(np.asarray(host), prefix)
    if self.numel() == 0 and self.ndim != 1:
        text += f", size={self.shape}"
    if self.device != "cpu":
        text += f", device='{self.device}'"
    return text + f", dtype={_DISPLAY_NAMES[self.dtype]})"


def _tolist(self: Tensor) -> Any:
    """The values as nested Python lists of int / float / bool (a number for a 0-d tensor)."""
    return np.asarray(self).tolist()


def _one_value(self: Tensor, what: str) -> Any:
    if self.numel() != 1:
        raise TypeError(f"{what} needs a tensor with one element, got shape {self.shape} "
                        f"({self.numel()} elements)")
    return np.asarray(self).reshape(()).item()


def _item(self: Tensor) -> Any:
    """The one element as a Python int / float / bool; TypeError for any other element count."""
    return _one_value(self, "item()")


def _float(self: Tensor) -> float:
    return float(_one_value(self, "float()"))


def _int(self: Tensor) -> int:
    return int(_one_value(self, "int()"))


def _bool(self: Tensor) -> bool:
    if self.numel() != 1:
        raise ValueError(f"the truth value of a tensor with {self.numel()} elements (shape "
                         f"{self.shape}) is ambiguous; use (t == x).all() or .any()")
    return bool(_one_value(self, "bool()"))


def _comparable(other: Any) -> bool:
    return isinstance(other, Tensor | np.ndarray | np.generic | int | float | bool | list |
                      tuple) or hasattr(other, "__array__") or hasattr(other, "__dlpack__")


def _as_array(other: Any) -> Any:
    if hasattr(other, "__array__") or not hasattr(other, "__dlpack__"):
        return np.asarray(other)
    return np.asarray(from_dlpack(other))


def _eq(self: Tensor, other: Any) -> Any:
    """Element-wise ==, through numpy: a numpy bool array (broadcasting as numpy does)."""
    if not _comparable(other):
        return NotImplemented
    return np.asarray(self) == _as_array(other)


def _ne(self: Tensor, other: Any) -> Any:
    if not _comparable(other):
        return NotImplemented
    return np.asarray(self) != _as_array(other)


# The Python half of Tensor's methods (the stubs declare them on the class).
for _name, _method in {
    "numpy": to_numpy, "__array__": _array, "__repr__": _repr, "tolist": _tolist, "item": _item,
    "__float__": _float, "__int__": _int, "__bool__": _bool, "__eq__": _eq, "__ne__": _ne,
    # Tensors hash by identity, as torch's do (setting __eq__ would otherwise leave them
    # unhashable).
    "__hash__": object.__hash__,
}.items():
    setattr(Tensor, _name, _method)
del _name, _method
