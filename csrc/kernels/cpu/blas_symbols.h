// OpenBLAS's functions under the names the library at hand exports.
//
// scipy-openblas32, the PyPI build of OpenBLAS that numpy and scipy ship (and `pip install .`
// builds against), prefixes every symbol with `scipy_` (scipy_cblas_sgemm), so that it never
// collides with another BLAS loaded into the same process; its cblas.h declares the prefixed
// names only. Debian's libopenblas exports the plain names. CMake defines
// HFPORT_BLAS_SYMBOL_PREFIX to the prefix when there is one (cmake/dependencies.cmake), and
// HFPORT_BLAS(cblas_sgemm) names the right function either way. The enums (CblasRowMajor, ...)
// carry no prefix in either header.
#pragma once

#include <cblas.h>

#include <mutex>

#ifdef HFPORT_BLAS_SYMBOL_PREFIX
#define HFPORT_BLAS_CONCAT_(prefix, name) prefix##name
#define HFPORT_BLAS_CONCAT(prefix, name) HFPORT_BLAS_CONCAT_(prefix, name)
#define HFPORT_BLAS(name) HFPORT_BLAS_CONCAT(HFPORT_BLAS_SYMBOL_PREFIX, name)
#else
#define HFPORT_BLAS(name) name
#endif

namespace hfport {

// OpenBLAS's own threads off, once per process: hfport's pool runs every GEMM slab, and OpenBLAS
// threads inside pool threads would oversubscribe the cores (docs/decisions.md, "One thread pool
// for GEMMs too"). Every kernel that calls into OpenBLAS calls this first.
inline void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { HFPORT_BLAS(openblas_set_num_threads)(1); });
}

}  // namespace hfport
