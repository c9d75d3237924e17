"""What the GPU benchmarks (benchmarks/bench_gpu_*.py) share: why a machine cannot run them, the
one-line description of the device their tables print, and timing with CUDA events.

Every GPU benchmark runs where hfport is built with CUDA, sees a device and torch has CUDA; where
one of the three is missing it prints which (no_gpu_message) and exits 0. This file is not a
benchmark itself (gpu_check.sh runs every bench_gpu_*.py, which this name is not).
"""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Callable

import hfport
import torch


def no_gpu_reason() -> str | None:
    """Which of hfport's CUDA build, a device hfport sees, or CUDA torch is missing; None if none."""
    if not hfport.built_with_cuda():
        return "hfport was built without CUDA (HFPORT_CUDA=OFF or no nvcc at build time)"
    if hfport.cuda_device_count() == 0:
        return "hfport sees no CUDA device"
    if not torch.cuda.is_available():
        return "torch has no CUDA (torch.cuda.is_available() is False)"
    return None


def no_gpu_message(script: str, reason: str) -> str:
    """The line a GPU benchmark prints before it exits 0 without measuring anything."""
    return (f"{script}: skipped, no GPU to measure on ({reason}); nothing to measure or write "
            f"here, run it on a machine with a GPU.")


def driver_version() -> str:
    """The NVIDIA driver's version from nvidia-smi, else the CUDA driver API's, else "unknown"."""
    try:
        line = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, check=True, timeout=30).stdout
        return line.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    try:
        version = ctypes.c_int()
        ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(version))
        return f"CUDA driver API {version.value // 1000}.{version.value % 1000 // 10}"
    except OSError:
        return "unknown"


def gpu_line() -> str:
    """The current device, its driver and the software versions, for a table's header."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return (f"{props.name} ({props.multi_processor_count} SMs, "
            f"{props.total_memory / (1 << 30):.0f} GiB), driver {driver_version()}, "
            f"CUDA (torch) {torch.version.cuda}, torch {torch.__version__}, "
            f"hfport {hfport.__version__}")


def cuda_event_ms(fn: Callable[[], object], calls: int = 1) -> float:
    """Milliseconds per call over one block of `calls` back-to-back calls, timed with a pair of
    CUDA events on the current stream (so it covers the device work, not only the launches)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls
