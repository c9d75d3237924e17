# Where the build takes the libraries hfport_core compiles against.
#
# HFPORT_DEPS picks the route:
#   PYPI    the Python packages of the interpreter that builds (Python_EXECUTABLE): `nlohmann-json`
#           (headers) and `scipy-openblas32` (OpenBLAS, its symbols prefixed `scipy_`, as numpy and
#           scipy use it). `pip install .` gets both from pyproject.toml's build requirements, so
#           no root and no Debian package is needed.
#   SYSTEM  Debian's -dev packages (nlohmann-json3-dev, libopenblas-dev): `make deps-debian`.
#   AUTO    (default) PYPI when that interpreter has both packages, else SYSTEM.
# Sets HFPORT_JSON_INCLUDE_DIR (empty: the compiler's default path has it), HFPORT_BLAS_INCLUDE_DIR
# (likewise), HFPORT_BLAS_LIBRARY, HFPORT_BLAS_LICENSE (PYPI: the license file to ship with a copy
# of it), HFPORT_BLAS_SYMBOL_PREFIX (empty for Debian's OpenBLAS) and HFPORT_DEPS_ROUTE.
#
# DLPack's header still comes from Debian's libdlpack-dev until hfport's own DLPack declarations
# replace it (issue 19). The C++ tests' GoogleTest comes from Debian's libgtest-dev; only
# HFPORT_BUILD_TESTS needs it.

set(HFPORT_DEPS AUTO CACHE STRING "Where nlohmann-json and OpenBLAS come from: AUTO, PYPI or SYSTEM")
set_property(CACHE HFPORT_DEPS PROPERTY STRINGS AUTO PYPI SYSTEM)
string(TOUPPER "${HFPORT_DEPS}" _hfport_deps)
if(NOT _hfport_deps MATCHES "^(AUTO|PYPI|SYSTEM)$")
  message(FATAL_ERROR "HFPORT_DEPS is '${HFPORT_DEPS}'; expected AUTO, PYPI or SYSTEM")
endif()

set(_hfport_pypi_json "")
set(_hfport_pypi_blas "")
if(NOT _hfport_deps STREQUAL "SYSTEM")
  find_package(Python 3.10 COMPONENTS Interpreter)
  if(Python_Interpreter_FOUND)
    # One line each: the include folder; the include folder, library folder and file name.
    execute_process(
      COMMAND ${Python_EXECUTABLE} -c "import nlohmann_json; print(nlohmann_json.get_include())"
      OUTPUT_VARIABLE _hfport_pypi_json OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    execute_process(
      COMMAND ${Python_EXECUTABLE} -c
              "import scipy_openblas32 as b, importlib.metadata as m; print(b.get_include_dir(), b.get_lib_dir(), b.get_library(True), *[f.locate() for f in m.files('scipy-openblas32') if f.name.startswith('LICENSE')][:1], sep=';')"
      OUTPUT_VARIABLE _hfport_pypi_blas OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  if(_hfport_deps STREQUAL "PYPI" AND (NOT _hfport_pypi_json OR NOT _hfport_pypi_blas))
    message(FATAL_ERROR
            "HFPORT_DEPS=PYPI, but the Python '${Python_EXECUTABLE}' lacks the packages "
            "nlohmann-json or scipy-openblas32: `${Python_EXECUTABLE} -m pip install "
            "nlohmann-json scipy-openblas32`, or choose the Debian packages with -DHFPORT_DEPS=SYSTEM")
  endif()
endif()

if(_hfport_pypi_json AND _hfport_pypi_blas)
  set(HFPORT_DEPS_ROUTE PYPI)
  set(HFPORT_JSON_INCLUDE_DIR ${_hfport_pypi_json})
  list(GET _hfport_pypi_blas 0 HFPORT_BLAS_INCLUDE_DIR)
  list(GET _hfport_pypi_blas 1 _hfport_blas_dir)
  list(GET _hfport_pypi_blas 2 _hfport_blas_file)
  set(HFPORT_BLAS_LIBRARY ${_hfport_blas_dir}/${_hfport_blas_file})
  # OpenBLAS's license (with LAPACK's and the GCC runtime's), shipped beside the copy of the library.
  set(HFPORT_BLAS_LICENSE "")
  list(LENGTH _hfport_pypi_blas _hfport_blas_fields)
  if(_hfport_blas_fields GREATER 3)
    list(GET _hfport_pypi_blas 3 HFPORT_BLAS_LICENSE)
  endif()
  # scipy-openblas32's cblas.h declares every function with this prefix (scipy_cblas_sgemm).
  set(HFPORT_BLAS_SYMBOL_PREFIX scipy_)
  foreach(_file ${HFPORT_JSON_INCLUDE_DIR}/nlohmann/json.hpp ${HFPORT_BLAS_INCLUDE_DIR}/cblas.h
                ${HFPORT_BLAS_LIBRARY})
    if(NOT EXISTS ${_file})
      message(FATAL_ERROR "hfport: the PyPI packages of '${Python_EXECUTABLE}' name '${_file}', "
                          "which does not exist")
    endif()
  endforeach()
else()
  set(HFPORT_DEPS_ROUTE SYSTEM)
  set(HFPORT_JSON_INCLUDE_DIR "")
  set(HFPORT_BLAS_INCLUDE_DIR "")
  set(HFPORT_BLAS_SYMBOL_PREFIX "")
  set(_hfport_pip_hint "or `pip install nlohmann-json scipy-openblas32` into the Python that builds")
  find_path(_hfport_json_found nlohmann/json.hpp NO_CACHE)
  if(NOT _hfport_json_found)
    message(FATAL_ERROR "hfport needs <nlohmann/json.hpp>: install the Debian package "
                        "'nlohmann-json3-dev' (`make deps` as root), ${_hfport_pip_hint}")
  endif()
  find_path(_hfport_cblas_found cblas.h NO_CACHE)
  find_library(HFPORT_BLAS_LIBRARY openblas)
  if(NOT _hfport_cblas_found OR NOT HFPORT_BLAS_LIBRARY)
    message(FATAL_ERROR "hfport needs OpenBLAS (cblas.h and libopenblas): install the Debian "
                        "package 'libopenblas-dev' (`make deps` as root), ${_hfport_pip_hint}")
  endif()
endif()
message(STATUS "hfport: dependencies from ${HFPORT_DEPS_ROUTE} (HFPORT_DEPS=${HFPORT_DEPS}); "
               "OpenBLAS ${HFPORT_BLAS_LIBRARY}")

