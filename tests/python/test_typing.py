"""Typing: real signatures on every binding, readable help(), stubs that agree with the module.

The stubs (python/hfport/_hfport/*.pyi, `make stubs`) are compared with the module this Python
imports by regenerating them, and checked by mypy (stubtest, and --strict on the files typed
through) on the sources in python/, with MYPYPATH pointing there, because mypy cannot follow the
import hook of an editable install.
"""

from __future__ import annotations

import inspect
import os
import pydoc
import re
import subprocess
import sys
import types
from pathlib import Path

import hfport
import hfport._hfport as native
import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON_SRC = REPO / "python"
TYPING = REPO / "tests" / "typing"
# Type-checked with --strict: the whole package and its stubs.
STRICT_FILES = sorted(str(p.relative_to(PYTHON_SRC)) for p in (PYTHON_SRC / "hfport").rglob("*.py*")
                      if p.suffix in (".py", ".pyi"))


def bindings(module: types.ModuleType, prefix: str = "hfport._hfport"):
    """(qualified name, docstring) of every function and method the compiled module defines."""
    for name, obj in sorted(vars(module).items()):
        if isinstance(obj, types.ModuleType):
            if obj is not module and obj.__name__.startswith("hfport._hfport"):
                yield from bindings(obj, f"{prefix}.{name}")
        elif isinstance(obj, type) and obj.__module__.startswith("hfport"):
            for attr, member in sorted(vars(obj).items()):
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if type(member).__name__ in ("builtin_function_or_method", "instancemethod"):
                    yield f"{prefix}.{name}.{attr}", member.__doc__ or ""
        elif type(obj).__name__ == "builtin_function_or_method":
            yield f"{prefix}.{name}", obj.__doc__ or ""


def test_every_binding_names_its_arguments():
    found = list(bindings(native))
    assert len(found) > 50, "the walk over the module found too few bindings"
    unnamed = [f"{name}: {line.strip()}" for name, doc in found for line in doc.splitlines()
               if re.search(r"\barg\d+\s*:", line)]
    assert not unnamed, "bindings without py::arg names:\n" + "\n".join(unnamed)


def test_ops_have_inspectable_signatures():
    sig = inspect.signature(hfport.ops.attention)
    assert list(sig.parameters)[:3] == ["q", "k", "v"]
    causal = sig.parameters["causal"]
    assert causal.kind is inspect.Parameter.KEYWORD_ONLY and causal.default is False
    assert sig.parameters["layout"].default == "bhsd"
    for name in hfport.ops.__all__:
        params = inspect.signature(getattr(hfport.ops, name)).parameters
        assert params and not any(re.fullmatch(r"arg\d+", p) for p in params), name


def test_ops_call_through_with_keywords():
    np = pytest.importorskip("numpy")
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    w = np.ones(4, dtype=np.float32)
    out = np.from_dlpack(hfport.ops.rms_norm(x, w, eps=1e-6))
    ref = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    with pytest.raises(TypeError):
        hfport.ops.rms_norm(x, w, no_such_argument=1)


@pytest.mark.parametrize("name", ["attention", "rope", "linear", "selective_scan"])
def test_help_first_line_is_the_signature(name):
    text = pydoc.render_doc(getattr(hfport.ops, name), renderer=pydoc.plaintext)
    first = next(line for line in text.splitlines()[1:] if line.strip())
    assert first.startswith(f"{name}("), first
    assert "pybind11" not in first, first


def test_package_ships_py_typed_and_stubs():
    package = PYTHON_SRC / "hfport"
    assert (package / "py.typed").is_file()
    for stub in ("__init__.pyi", "ops.pyi"):
        assert (package / "_hfport" / stub).is_file()


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One cache for the module's mypy runs (numpy's stubs are analysed once), outside the tree."""
    pytest.importorskip("mypy")
    return tmp_path_factory.mktemp("mypy_cache")


def mypy(cache: Path, *args: str, source: Path = PYTHON_SRC):
    """mypy finding hfport's sources and stubs in `source`, run from a folder of its own (mypy
    searches its working folder first; the runtime module is the one this Python imports)."""
    env = dict(os.environ, MYPYPATH=str(source), MYPY_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", *args], cwd=cache, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


def stubtest(cache: Path, source: Path = PYTHON_SRC):
    return mypy(cache, "mypy.stubtest", "hfport._hfport", "--mypy-config-file",
                str(TYPING / "stubtest_mypy.ini"), "--allowlist",
                str(TYPING / "stubtest_allowlist.txt"), source=source)


def test_stubs_agree_with_the_module(mypy_cache):
    done = stubtest(mypy_cache)
    assert done.returncode == 0, (
        f"{done.stdout}\n{done.stderr}\nThe stubs in python/hfport/_hfport disagree with the "
        "module: regenerate them with `make stubs`.")


def test_committed_stubs_are_what_the_module_gives():
    """Every name, argument, default, type and docstring: stubtest compares pybind11 functions by
    name only (they have no __text_signature__), so the stubs are regenerated and compared."""
    pytest.importorskip("pybind11_stubgen")
    done = subprocess.run([sys.executable, str(TYPING / "generate_stubs.py"), "--check"],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_typed_modules_pass_mypy_strict(mypy_cache):
    done = mypy(mypy_cache, "mypy", "--strict", "--config-file", str(TYPING / "stubtest_mypy.ini"),
                *(str(PYTHON_SRC / f) for f in STRICT_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_tensor_parameters_take_any_dlpack_tensor(mypy_cache, tmp_path):
    """The stubs type an op's tensors as hfport.typing.SupportsDLPack: torch tensors, numpy arrays
    and hfport.Tensor pass mypy, a list does not."""
    assert hfport.typing.SupportsDLPack.__module__ == "hfport.typing"
    script = tmp_path / "caller.py"
    script.write_text(
        "import numpy as np\n"
        "import torch\n"
        "import hfport\n\n"
        "x = np.ones((2, 4), dtype=np.float32)\n"
        "hfport.ops.rms_norm(x, torch.ones(4), eps=1e-6)\n"
        "hfport.ops.rms_norm(hfport.ops.silu(x), np.ones(4, dtype=np.float32))\n"
        "hfport.ops.rms_norm([[1.0, 2.0]], np.ones(2, dtype=np.float32))\n")
    done = mypy(mypy_cache, "mypy", "--strict", "--config-file", str(TYPING / "stubtest_mypy.ini"),
                str(script))
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "caller.py:8:" in errors[0] and "SupportsDLPack" in errors[0], \
        done.stdout + done.stderr


def test_dlpack_protocol_recognises_producers():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    from hfport.typing import SupportsDLPack

    t = hfport.ops.silu(np.ones(3, dtype=np.float32))
    for producer in (np.zeros(2), torch.zeros(2), t):
        assert isinstance(producer, SupportsDLPack)
    assert not isinstance([1.0, 2.0], SupportsDLPack)
    assert inspect.signature(hfport.ops.attention).parameters["q"].annotation is SupportsDLPack
