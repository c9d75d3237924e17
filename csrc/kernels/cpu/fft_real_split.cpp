// RealFftSplit: a real FFT through a half-size complex one. See fft_real_split.h.
#include "kernels/cpu/fft_real_split.h"

#include "kernels/cpu/fft_unit_root.h"

namespace hfport {

template <class T>
RealFftSplit<T>::RealFftSplit(int64_t size) : size_(size), half_(size / 2) {
  for (int64_t k = 0; k <= size / 4; ++k) twiddles_.push_back(unit_root<T>(k, size));
}

template <class T>
void RealFftSplit<T>::forward(const T* in, std::complex<T>* out) {
  using C = std::complex<T>;
  const int64_t half = size_ / 2;
  // An array of T read as pairs (real, imaginary): the layout std::complex<T> is specified to have.
  half_.forward(reinterpret_cast<const C*>(in), out);
  const C z0 = out[0];
  out[0] = {z0.real() + z0.imag(), T(0)};
  out[half] = {z0.real() - z0.imag(), T(0)};
  for (int64_t k = 1; k <= half / 2; ++k) {
    const C a = out[k], b = std::conj(out[half - k]);
    const C e = (a + b) * T(0.5);
    const C d = (a - b) * T(0.5);
    const C o = {d.imag(), -d.real()};  // d / i
    const C w = twiddles_[static_cast<size_t>(k)];
    // w o written out (std::complex's operator* would call __mulsc3 for its inf/nan recovery).
    const C t = {w.real() * o.real() - w.imag() * o.imag(),
                 w.real() * o.imag() + w.imag() * o.real()};
    // k = half / 2 (half even) is its own mirror: its bin is written twice, the second stands.
    out[half - k] = std::conj(e - t);
    out[k] = e + t;
  }
}

template class RealFftSplit<float>;
template class RealFftSplit<double>;

}  // namespace hfport
