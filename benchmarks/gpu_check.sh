#!/usr/bin/env bash
# Everything hfport owes a GPU, in one command for a machine with an NVIDIA GPU, nvcc, torch and
# transformers but none of the Debian packages the build needs (the lent H100/H200 machines).
#
#   here (with network):   make gpu-deps          # downloads the .deb files into .gpu-deps/
#   there:                 bash benchmarks/gpu_check.sh [OUT_DIR] [all|tests|sanitize|bench]
#
# A device call runs at most 10 minutes; when all of it does not fit, run the parts in separate
# calls on the same warm machine (the build tree stays, so each part rebuilds nothing).
#
# Steps: unpack the .deb files into a private root (never into /), configure and build with CUDA
# and the tests, run the CUDA C++ tests, the same under compute-sanitizer memcheck (and racecheck
# for the attention tests), the Python GPU tests, then every benchmarks/bench_gpu_*.py, writing
# their sections into docs/benchmarks.md. OUT_DIR (default: $OUT, else ./gpu-check-out) gets three
# files: gpu_check.log (every step's output, in order), device.txt and benchmarks.md; the device
# tool brings back at most 8 files, so the steps share one log. Every step runs even when an
# earlier one fails; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-$PWD/gpu-check-out}}"
part="${2:-all}"
case "$part" in all|tests|sanitize|bench) ;; *) echo "unknown part '$part'"; exit 2 ;; esac
wants() { [ "$part" = all ] || [ "$part" = "$1" ]; }
mkdir -p "$out"
root=/tmp/hfport-gpu-deps
status=0
log="$out/gpu_check.log"
: >"$log"
step() {  # step NAME COMMAND...: run, append its output to $log, remember a failure
  local name=$1; shift
  echo "== $name: $*" | tee -a "$log"
  local step_log
  step_log=$(mktemp)
  if "$@" >"$step_log" 2>&1; then
    echo "   ok"
  else
    echo "   FAILED (its output is under '== $name' in gpu_check.log)"; tail -n 30 "$step_log"; status=1
  fi
  cat "$step_log" >>"$log"
  rm -f "$step_log"
}

if compgen -G ".gpu-deps/*.deb" >/dev/null; then
  mkdir -p "$root"
  for deb in .gpu-deps/*.deb; do dpkg -x "$deb" "$root"; done
fi
blas_dir="$root/usr/lib/x86_64-linux-gnu/openblas-pthread"
export LD_LIBRARY_PATH="$blas_dir:$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/device.txt"

step configure cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DHFPORT_BUILD_TESTS=ON -DHFPORT_BUILD_PYTHON=ON \
  -DCMAKE_PREFIX_PATH="$root/usr" \
  -DCMAKE_INCLUDE_PATH="$root/usr/include;$root/usr/include/x86_64-linux-gnu/openblas-pthread" \
  -DCMAKE_LIBRARY_PATH="$blas_dir;$root/usr/lib/x86_64-linux-gnu" \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)"
step build ninja -C build/gpu
ln -sf "../../build/gpu/$(cd build/gpu && ls _hfport*.so)" python/hfport/
export PYTHONPATH="$PWD/python:$PWD/tests/python"

if wants tests; then
  step cpp-cuda ./build/gpu/hfport_tests --gtest_filter='*Cuda*:*Flash*:*Scan*'
  step cpp-all ./build/gpu/hfport_tests --gtest_brief=1
  step pytest-cuda python3 -m pytest -q -rs $(ls tests/python/test_*cuda*.py)
fi
if wants sanitize; then
  step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 \
    ./build/gpu/hfport_tests --gtest_filter='*Cuda*:*Flash*'
  step racecheck compute-sanitizer --tool racecheck --error-exitcode 1 \
    ./build/gpu/hfport_tests --gtest_filter='*CudaAttention*:*Flash*'
fi
if wants bench; then
  for bench in benchmarks/bench_gpu_*.py; do
    step "$(basename "$bench" .py)" python3 "$bench" --write docs/benchmarks.md
  done
  cp docs/benchmarks.md "$out/benchmarks.md"
fi
exit $status
