"""The build's switches say what they do: HFPORT_CUDA=AUTO|ON|OFF, and make's own venv.

The CMake runs configure a scratch build folder only (nothing is compiled but CMake's own compiler
checks) with the Python running the tests, whose nlohmann-json and scipy-openblas32 (make deps)
are the PyPI route of cmake/dependencies.cmake.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NVCC = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc"
                                if os.path.exists("/usr/local/cuda/bin/nvcc") else None)

needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="no CUDA compiler on this machine")


def configure(tmp_path: Path, *defines: str, env: dict[str, str] | None = None):
    build = tmp_path / "build"
    shutil.rmtree(build, ignore_errors=True)
    full_env = {k: v for k, v in os.environ.items() if k not in ("HFPORT_CUDA", "CUDAARCHS")}
    full_env.update(env or {})
    done = subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(build), "-DHFPORT_BUILD_PYTHON=OFF",
         f"-DPython_EXECUTABLE={sys.executable}", *defines],
        env=full_env, capture_output=True, text=True, check=False, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("-- hfport: CUDA ")]
    return done, lines


@needs_cmake
def test_cuda_off_says_so(tmp_path):
    done, lines = configure(tmp_path, "-DHFPORT_CUDA=OFF")
    assert done.returncode == 0, done.stderr
    assert lines == ["-- hfport: CUDA off: HFPORT_CUDA=OFF"]


@needs_cmake
def test_cuda_from_the_environment(tmp_path):
    """`HFPORT_CUDA=OFF pip install .`: the variable reaches the build without -D."""
    done, lines = configure(tmp_path, env={"HFPORT_CUDA": "off"})
    assert done.returncode == 0, done.stderr
    assert lines == ["-- hfport: CUDA off: HFPORT_CUDA=OFF"]


@needs_cmake
def test_cuda_on_without_nvcc_fails_clearly(tmp_path):
    done, _ = configure(tmp_path, "-DHFPORT_CUDA=ON", env={"CUDACXX": str(tmp_path / "no-nvcc")})
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert "HFPORT_CUDA=ON, but no CUDA compiler was found" in message
    assert "HFPORT_CUDA=OFF" in message


@needs_cmake
def test_cuda_auto_without_nvcc_builds_for_the_cpu(tmp_path):
    done, lines = configure(tmp_path, env={"CUDACXX": str(tmp_path / "no-nvcc")})
    assert done.returncode == 0, done.stderr
    assert lines == ["-- hfport: CUDA off: HFPORT_CUDA=AUTO and no nvcc found"]


@needs_cmake
def test_cuda_mode_is_checked(tmp_path):
    done, _ = configure(tmp_path, "-DHFPORT_CUDA=maybe")
    assert done.returncode != 0
    assert "HFPORT_CUDA is 'maybe'; expected AUTO, ON or OFF" in done.stderr


def fake_nvidia_smi(folder: Path, output: str) -> dict[str, str]:
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    smi.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


@needs_cmake
@needs_nvcc
def test_cuda_auto_without_gpu_builds_the_listed_architectures(tmp_path):
    # An nvidia-smi that sees no GPU (it exits non-zero, as without a driver).
    env = fake_nvidia_smi(tmp_path / "bin", "")
    (tmp_path / "bin" / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")
    done, lines = configure(tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert len(lines) == 1
    assert re.fullmatch(r"-- hfport: CUDA on \(HFPORT_CUDA=AUTO, nvcc [0-9.]+\): sm 80;90a for the "
                        r"listed architectures \(HFPORT_CUDA_LISTED_ARCHITECTURES\): nvidia-smi "
                        r"shows no GPU", lines[0]), lines[0]


@needs_cmake
@needs_nvcc
def test_cuda_auto_builds_for_the_visible_gpu(tmp_path):
    env = fake_nvidia_smi(tmp_path / "bin", "NVIDIA H100 80GB HBM3, 9.0\\n")
    done, lines = configure(tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert len(lines) == 1
    assert lines[0].endswith("sm 90a for the GPU nvidia-smi shows (NVIDIA H100 80GB HBM3)"), lines


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_installs_only_into_the_project_venv():
    """Every pip install that `make demo`, `make test` and the rest run goes into .venv (or, for
    test-wheel, a venv of its own), never into the interpreter make was started from."""
    done = subprocess.run(
        ["make", "-n", "-B", "deps-python", "dev", "demo", "test", "test-sanitize", "fuzz-corpus",
         "test-wheel", "BASE_PYTHON=python3"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    installs = [line.strip() for line in done.stdout.splitlines()
                if re.search(r"\bpip\b.*\binstall\b", line)]
    assert len(installs) >= 3, done.stdout
    outside = [line for line in installs if not line.startswith(".venv/bin/python -m pip")
               and "echo" not in line and not line.startswith("! .venv/")]
    assert not outside, outside
    assert "python3 -m venv .venv" in done.stdout
    bare = [line.strip() for line in done.stdout.splitlines()
            if re.match(r"\s*(python3?|pip3?|pytest|hfport) ", line) and "-m venv .venv" not in line]
    assert not bare, bare
