"""Regenerates python/hfport/_hfport/*.pyi, the stubs of the compiled module (`make stubs`).

    python tests/typing/generate_stubs.py          # with the Python whose hfport._hfport to read
    python tests/typing/generate_stubs.py --check  # exit 1, with a diff, when the committed
                                                   # stubs differ from what the module gives

pybind11-stubgen reads the real signatures (py::arg names, defaults, the types pybind11 names) and
the docstrings from the module this Python imports. Two fixes follow, both from what pybind11
reports rather than what the stub should say:
- the exception classes are created by the module (py::register_exception) but carry the
  `__module__` hfport.errors, which re-exports them; pybind11-stubgen then imports them from
  there, a cycle through the package. They are written as classes of the stub instead, with their
  bases.
- a parameter whose default is None but whose pybind11 type cannot be None (a std::function
  argument bound with `= py::none()`) gets `| None`, as PEP 484 asks.
Test hooks that only CUDA builds bind are left out (CUDA_ONLY), so the stubs are the same for every
build. The stubs are kept in git and shipped with py.typed. tests/python/test_typing.py fails whenever
they and the module disagree (--check: a binding added, removed, renamed, or with an argument,
default, type or docstring changed needs `make stubs`), and runs mypy's stubtest and --strict on
them. stubtest alone would not do: pybind11's functions have no __text_signature__, so stubtest
compares their names but not their arguments.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "python" / "hfport" / "_hfport"


def exception_classes(text: str) -> str:
    import hfport._hfport as module

    names = re.findall(r"^from hfport\.errors import (\w+)$", text, re.MULTILINE)
    if not names:
        return text
    classes = {n: getattr(module, n) for n in names}
    lines, done = [], set()

    def emit(name: str) -> None:
        if name in done:
            return
        cls = classes[name]
        bases = []
        for base in cls.__bases__:
            if base.__name__ in classes:
                emit(base.__name__)
                bases.append(base.__name__)
            else:
                bases.append(base.__name__ if base.__module__ == "builtins" else
                             f"{base.__module__}.{base.__qualname__}")
        lines.append(f"class {name}({', '.join(bases)}):\n    pass")
        done.add(name)

    for name in names:
        emit(name)
    text = re.sub(r"^from hfport\.errors import \w+\n", "", text, flags=re.MULTILINE)
    # The classes go after the imports, before the first definition.
    first = re.search(r"^(class |def |[A-Za-z_]\w*: )", text, re.MULTILINE)
    position = first.start() if first else len(text)
    return text[:position] + "\n".join(lines) + "\n" + text[position:]


def annotate_untyped(text: str) -> str:
    """What pybind11 reports without types: a `py::args` parameter (`*args`, any objects) and the
    `__hash__` hfport.tensor sets from object's (an int)."""
    text = re.sub(r"\*args(?=[,)])", "*args: typing.Any", text)
    return re.sub(r"def __hash__\(self\):", "def __hash__(self) -> int:", text)


def accepts_none(ann: ast.expr) -> bool:
    """The annotation admits None at its top level (X | None, Optional[X], Any, object)."""
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        return accepts_none(ann.left) or accepts_none(ann.right)
    if isinstance(ann, ast.Constant):
        return ann.value is None
    text = ast.unparse(ann)
    return text in ("typing.Any", "object") or text.startswith(("typing.Optional[", "Optional["))


def optional_none_defaults(text: str) -> str:
    tree = ast.parse(text)
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            ann = arg.annotation
            if (ann is None or not isinstance(default, ast.Constant) or default.value is not None
                    or accepts_none(ann)):
                continue
            end = line_starts[ann.end_lineno - 1] + ann.end_col_offset
            edits.append(end)
    for end in sorted(edits, reverse=True):
        text = text[:end] + " | None" + text[end:]
    return text


# Bindings that only CUDA builds have (test hooks); left out, so that the stubs are the same for
# every build and the check passes on CPU-only and CUDA builds alike.
CUDA_ONLY = {"_flash_attention_for_tests"}


def drop_cuda_only(text: str) -> str:
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    for node in reversed(tree.body):
        if isinstance(node, ast.FunctionDef) and node.name in CUDA_ONLY:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            del lines[first - 1:node.end_lineno]
    return "".join(lines)


# Generic types pybind11 names bare (py::tuple, py::dict, py::list, py::iterator): what mypy
# --strict asks, with the element types left open.
BARE_GENERICS = {"tuple": "[typing.Any, ...]", "list": "[typing.Any]",
                 "dict": "[typing.Any, typing.Any]", "collections.abc.Iterator": "[typing.Any]",
                 "typing.Iterator": "[typing.Any]", "collections.abc.Callable": "[..., typing.Any]"}


def parametrize_bare_generics(text: str) -> str:
    tree = ast.parse(text)
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    subscripted = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
    annotations: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
    edits = []
    for ann in annotations:
        for node in ast.walk(ann):
            if (isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in subscripted
                    and ast.unparse(node) in BARE_GENERICS):
                end = line_starts[node.end_lineno - 1] + node.end_col_offset
                edits.append((end, BARE_GENERICS[ast.unparse(node)]))
    for end, params in sorted(set(edits), reverse=True):
        text = text[:end] + params + text[end:]
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed stubs instead of writing them")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as out:
        # The CUDA-only test hook names raw C++ types, which would stop pybind11-stubgen; it is
        # left out of the stubs below anyway (CUDA_ONLY).
        subprocess.run([sys.executable, "-m", "pybind11_stubgen", "hfport._hfport", "--output-dir",
                        out, "--exit-code", "--ignore-unresolved-names", r"^np\.ndarray$",
                        "--ignore-invalid-expressions", r"^std::optional<(double|long)>$"],
                       check=True)
        generated = Path(out) / "hfport" / "_hfport"
        for stub in generated.glob("*.pyi"):
            text = stub.read_text()
            if stub.name == "__init__.pyi":
                text = exception_classes(text)
                if "np.ndarray" in text and "import numpy as np" not in text:
                    text = text.replace("\nimport typing\n", "\nimport numpy as np\nimport typing\n", 1)
            # pybind11 modules have no __all__; stubtest would count one as a disagreement.
            text = re.sub(r"^__all__: .*\n", "", text, flags=re.MULTILINE)
            text = drop_cuda_only(text)
            text = annotate_untyped(text)
            stub.write_text(parametrize_bare_generics(optional_none_defaults(text)))
        if check:
            names = sorted({p.name for p in generated.glob("*.pyi")} |
                           {p.name for p in TARGET.glob("*.pyi")})
            diff = []
            for name in names:
                old, new = TARGET / name, generated / name
                diff += difflib.unified_diff(
                    old.read_text().splitlines() if old.exists() else [],
                    new.read_text().splitlines() if new.exists() else [],
                    f"committed/{name}", f"from the module/{name}", lineterm="")
            if diff:
                print("\n".join(diff[:200]))
                print("the stubs in python/hfport/_hfport differ from the module: `make stubs`")
                return 1
            print("the stubs agree with the module:", " ".join(names))
            return 0
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(generated, TARGET)
    print("wrote", " ".join(sorted(p.name for p in TARGET.glob("*.pyi"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
