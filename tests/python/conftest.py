"""Shared pieces of the reader tests: the dtype table, fresh random tensors, raw safetensors bytes.

Everything here is written from the safetensors format itself (8-byte little-endian header length,
JSON header, data buffer), never from hfport's output, so a test that compares hfport against these
helpers can fail.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch

# (torch dtype, safetensors dtype name). safetensors writes every one of these.
TORCH_DTYPES: list[tuple[torch.dtype, str]] = [
    (torch.bool, "BOOL"),
    (torch.uint8, "U8"),
    (torch.int8, "I8"),
    (torch.int16, "I16"),
    (torch.uint16, "U16"),
    (torch.int32, "I32"),
    (torch.uint32, "U32"),
    (torch.int64, "I64"),
    (torch.uint64, "U64"),
    (torch.float16, "F16"),
    (torch.bfloat16, "BF16"),
    (torch.float32, "F32"),
    (torch.float64, "F64"),
    (torch.float8_e4m3fn, "F8_E4M3"),
    (torch.float8_e5m2, "F8_E5M2"),
]

FLOAT_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64,
                torch.float8_e4m3fn, torch.float8_e5m2}


def dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def random_tensor(dtype: torch.dtype, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Fresh random values of `dtype` (no seed: every run differs), never all zeros.

    Integers are random bytes, so every bit pattern of the type can occur; floats are normal
    values at a few scales, then rounded to the dtype.
    """
    shape = tuple(shape)
    numel = 1
    for d in shape:
        numel *= d
    if dtype == torch.bool:
        flat = torch.randint(0, 2, (numel,), dtype=torch.uint8).bool()
        if numel:
            flat[torch.randint(0, numel, ())] = True
    elif dtype in FLOAT_DTYPES:
        scale = torch.tensor([0.01, 1.0, 100.0])[torch.randint(0, 3, (numel,))]
        flat = (torch.randn(numel, dtype=torch.float64) * scale).to(dtype)
        if numel:
            flat[torch.randint(0, numel, ())] = 1.5
    else:
        itemsize = torch.empty((), dtype=dtype).element_size()
        flat = torch.randint(0, 256, (numel * itemsize,), dtype=torch.uint8).view(dtype)
        if numel:
            flat[torch.randint(0, numel, ())] = 77
    return flat.reshape(shape)


def as_bytes(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 tensor: compares bit patterns, NaN payloads included."""
    return t.contiguous().reshape(-1).view(torch.uint8)


def assert_bit_exact(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype
    assert tuple(actual.shape) == tuple(expected.shape)
    assert torch.equal(as_bytes(actual), as_bytes(expected))


def safetensors_bytes(header: Any, data: bytes = b"", *, length: int | None = None) -> bytes:
    """8-byte little-endian length + header + data. `header` is a dict (dumped as JSON), a str or
    raw bytes; `length` overrides the length field."""
    if isinstance(header, dict | list):
        header = json.dumps(header, ensure_ascii=False)
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def read_header(path: Path) -> tuple[int, dict[str, Any]]:
    """The header length and JSON of a safetensors file, read straight from its bytes."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8 : 8 + n].decode("utf-8"))


def quoted(path: Path | str) -> str:
    """A regex matching `'path'` as hfport quotes file names in messages."""
    return re.escape(f"'{path}'")


class _Trap:
    """Unpickling this creates the folder `marker`: if a reader ever unpickles, the test sees it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def pickle_trap(marker: Path) -> bytes:
    """A pickle (protocol 4, as torch.save's data.pkl) that creates `marker` when unpickled."""
    return pickle.dumps({"weight": _Trap(marker)}, protocol=4)
