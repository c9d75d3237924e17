// exp(-2 pi i k / n), the FFTs' twiddles and butterfly constants, computed in long double and
// rounded once to T, so a table of them carries no error beyond T's half-ulp. The four quadrant
// points are exact (cos(pi / 2) in long double is 1e-20, not 0).
#pragma once

#include <cmath>
#include <complex>
#include <cstdint>
#include <numbers>

namespace hfport {

template <class T>
std::complex<T> unit_root(int64_t k, int64_t n) {
  k %= n;
  if (k < 0) k += n;
  if ((4 * k) % n == 0) {
    switch (4 * k / n) {
      case 0: return {T(1), T(0)};
      case 1: return {T(0), T(-1)};
      case 2: return {T(-1), T(0)};
      default: return {T(0), T(1)};
    }
  }
  const long double angle = 2.0L * std::numbers::pi_v<long double> * static_cast<long double>(k) /
                            static_cast<long double>(n);
  return {static_cast<T>(std::cos(angle)), static_cast<T>(-std::sin(angle))};
}

}  // namespace hfport
