"""hfport.ops: the fused kernels. Every op takes hfport.Tensor or any DLPack producer (torch,
numpy, ...) without a copy and returns hfport.Tensor; `torch.from_dlpack(out)` views the result.

>>> import hfport, torch
>>> q = k = v = torch.randn(1, 8, 128, 64)
>>> out = torch.from_dlpack(hfport.ops.attention(q, k, v, causal=True))

Each op here is the compiled function behind a plain Python function that carries its real
signature, so that `inspect.signature(hfport.ops.attention)`, IDEs and `help()` show the argument
names and defaults; pybind11's own function objects have none for inspect, and `help()` would name
pybind11's internal function-record type. The forwarding costs about 0.1 us a call. Type checkers
read the signatures from the stubs (python/hfport/_hfport/ops.pyi).
"""

from __future__ import annotations

import ast
import collections.abc
import functools
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hfport
import hfport.typing
from hfport._hfport import ops as _native

if TYPE_CHECKING:
    from hfport._hfport.ops import *


class _DefaultText:
    """A default that pybind11 printed as text which is no Python literal; shown as that text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_KINDS = inspect.Parameter


def signature_from_pybind11(doc: str) -> inspect.Signature:
    """The signature pybind11 writes as the first line of a function's docstring
    ("attention(q: object, k: object, *, causal: bool = False) -> object"), annotations kept as
    types where they can be named, else the text pybind11 gives. ValueError when the line is no signature (an overloaded function)."""
    first = doc.split("\n", 1)[0].strip()
    try:
        tree = ast.parse(f"def {first}: ...")
    except SyntaxError as e:
        raise ValueError(f"no pybind11 signature in {first!r}") from e
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):  # a class or an expression: not a signature
        raise ValueError(f"no pybind11 signature in {first!r}")  # noqa: TRY004
    args = node.args

    def default(expr: ast.expr | None) -> object:
        if expr is None:
            return _KINDS.empty
        try:
            return ast.literal_eval(expr)
        except ValueError:
            return _DefaultText(ast.unparse(expr))

    def annotation(expr: ast.expr | None) -> object:
        if expr is None:
            return _KINDS.empty
        text = ast.unparse(expr)
        try:  # the type itself where it can be named here ("bool", "hfport._hfport.Tensor")
            return eval(text, {"typing": typing, "hfport": hfport, "collections": collections})
        except Exception:  # noqa: BLE001 (a name not importable here stays text)
            return text

    params = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (arg, dflt) in enumerate(zip(positional, defaults)):
        kind = _KINDS.POSITIONAL_ONLY if i < len(args.posonlyargs) else _KINDS.POSITIONAL_OR_KEYWORD
        params.append(_KINDS(arg.arg, kind, default=default(dflt),
                             annotation=annotation(arg.annotation)))
    if args.vararg:
        params.append(_KINDS(args.vararg.arg, _KINDS.VAR_POSITIONAL,
                             annotation=annotation(args.vararg.annotation)))
    for arg, dflt in zip(args.kwonlyargs, args.kw_defaults):
        params.append(_KINDS(arg.arg, _KINDS.KEYWORD_ONLY, default=default(dflt),
                             annotation=annotation(arg.annotation)))
    if args.kwarg:
        params.append(_KINDS(args.kwarg.arg, _KINDS.VAR_KEYWORD,
                             annotation=annotation(args.kwarg.annotation)))
    return inspect.Signature(params, return_annotation=annotation(node.returns))


def _with_signature(native: Callable[..., Any]) -> Callable[..., Any]:
    doc = native.__doc__ or ""

    @functools.wraps(native)
    def op(*args: Any, **kwargs: Any) -> Any:
        return native(*args, **kwargs)

    op.__signature__ = signature_from_pybind11(doc)  # type: ignore[attr-defined]
    # The signature line is what help() now prints from __signature__; the prose stays.
    op.__doc__ = doc.split("\n", 1)[1].strip() if "\n" in doc else ""
    op.__module__ = __name__
    return op


__all__ = [name for name in sorted(vars(_native)) if not name.startswith("_")
           and callable(getattr(_native, name))]
globals().update({name: _with_signature(getattr(_native, name)) for name in __all__})
