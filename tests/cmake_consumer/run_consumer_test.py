"""The installed C++ package works for an outside project (`make test-cmake-package`).

    python tests/cmake_consumer/run_consumer_test.py BUILD_DIR WORK_DIR

Installs the C++ package from an hfport build folder (`cmake --install BUILD_DIR --component cpp`)
into WORK_DIR/prefix, configures and builds tests/cmake_consumer against that prefix alone
(find_package(hfport), target hfport::core), and runs it on a safetensors file written here byte
by byte: the tensors' values and x w^T (hfport::linear, so OpenBLAS links too) must come back
exactly, and a truncated file must end in hfport's typed error. Exits non-zero on any difference.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
W = [[0.5, -1.0, 2.0], [1.0, 0.0, -0.25]]


def write_safetensors(path: Path) -> bytes:
    tensors = {"w": W, "x": X}
    header: dict[str, object] = {"__metadata__": {"written_by": "run_consumer_test"}}
    data = b""
    for name, rows in tensors.items():
        flat = [v for row in rows for v in row]
        blob = struct.pack(f"<{len(flat)}f", *flat)
        header[name] = {"dtype": "F32", "shape": [len(rows), len(rows[0])],
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    content = struct.pack("<Q", len(text)) + text + data
    path.write_bytes(content)
    return content


def expected_output() -> str:
    def row(name: str, rows: list[list[float]]) -> str:
        values = " ".join(f"{v:g}" for r in rows for v in r)
        return f"{name} F32 [{len(rows)}, {len(rows[0])}] {values}"

    y = [[sum(a * b for a, b in zip(xr, wr)) for wr in W] for xr in X]
    return "\n".join(["metadata written_by=run_consumer_test", row("w", W), row("x", X),
                      row("linear", y)]) + "\n"


def cache_value(build: Path, key: str) -> str:
    match = re.search(rf"^{key}:[A-Z]+=(.*)$", (build / "CMakeCache.txt").read_text(), re.MULTILINE)
    if not match:
        sys.exit(f"{build}/CMakeCache.txt has no {key}")
    return match.group(1)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(map(str, args)), flush=True)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)


def checked(*args: str | Path) -> str:
    done = run(*args)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> int:
    build, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    if not (build / "CMakeCache.txt").is_file():
        sys.exit(f"{build} is not a configured hfport build folder (run make dev first)")
    shutil.rmtree(work, ignore_errors=True)
    prefix, consumer_build = work / "prefix", work / "build"
    work.mkdir(parents=True)

    checked("cmake", "--install", build, "--prefix", prefix, "--component", "cpp")
    for needed in ("include/hfport/core/checkpoint.h", "lib/cmake/hfport/hfportConfig.cmake",
                   "lib/libhfport_core.a"):
        if not (prefix / needed).is_file():
            sys.exit(f"cmake --install left no {needed} in {prefix}")
    if any(prefix.rglob("*.cpp")) or (prefix / "include/hfport/python").exists():
        sys.exit(f"the installed package holds sources or the pybind11 headers: {prefix}")

    checked("cmake", "-S", HERE, "-B", consumer_build, "-G", cache_value(build, "CMAKE_GENERATOR"),
            f"-DCMAKE_CXX_COMPILER={cache_value(build, 'CMAKE_CXX_COMPILER')}",
            f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release")
    found = cache_value(consumer_build, "hfport_DIR")
    if Path(found).resolve() != (prefix / "lib/cmake/hfport").resolve():
        sys.exit(f"find_package(hfport) found {found}, not the installed package in {prefix}")
    checked("cmake", "--build", consumer_build)
    program = consumer_build / "hfport_consumer"

    good = work / "tensors.safetensors"
    content = write_safetensors(good)
    out = checked(program, good)
    if out != expected_output():
        sys.exit(f"hfport_consumer printed\n{out}\nexpected\n{expected_output()}")

    truncated = work / "truncated.safetensors"
    truncated.write_bytes(content[:-4])
    done = run(program, truncated)
    if done.returncode != 1 or not done.stdout.startswith("hfport::Error: "):
        sys.exit(f"a truncated file: exit {done.returncode}, output {done.stdout!r} "
                 f"{done.stderr!r}; expected exit 1 and hfport::Error")
    print(f"cmake package consumer: 2 passed, 0 failed ({prefix})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
