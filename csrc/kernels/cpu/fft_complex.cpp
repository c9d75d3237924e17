// ComplexFftPlan: mixed-radix Stockham FFT. See fft_complex.h.
#include "kernels/cpu/fft_complex.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cpu/fft_unit_root.h"

namespace hfport {

namespace {

template <class T>
using C = std::complex<T>;

// a * b without std::complex's inf/nan recovery (__mulsc3): plain four products.
template <class T>
inline C<T> mul(C<T> a, C<T> b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// -i a
template <class T>
inline C<T> mul_neg_i(C<T> a) {
  return {a.imag(), -a.real()};
}

// The p-point DFTs of the written-out radices: b[u] = sum_r a[r] exp(-2 pi i r u / p).
template <class T>
struct Radix2 {
  static constexpr int kRadix = 2;
  void operator()(const C<T>* a, C<T>* b) const {
    b[0] = a[0] + a[1];
    b[1] = a[0] - a[1];
  }
};

template <class T>
struct Radix4 {
  static constexpr int kRadix = 4;
  void operator()(const C<T>* a, C<T>* b) const {
    const C<T> s02 = a[0] + a[2], d02 = a[0] - a[2];
    const C<T> s13 = a[1] + a[3], d13 = mul_neg_i(a[1] - a[3]);
    b[0] = s02 + s13;
    b[1] = d02 + d13;
    b[2] = s02 - s13;
    b[3] = d02 - d13;
  }
};

template <class T>
struct Radix3 {
  static constexpr int kRadix = 3;
  T sin_third;  // sin(2 pi / 3)
  void operator()(const C<T>* a, C<T>* b) const {
    const C<T> t = a[1] + a[2];
    const C<T> d = mul_neg_i(a[2] - a[1]) * sin_third;  // i sin(2pi/3) (a1 - a2), sign folded
    const C<T> m = a[0] - t * T(0.5);
    b[0] = a[0] + t;
    b[1] = m - d;
    b[2] = m + d;
  }
};

template <class T>
struct Radix5 {
  static constexpr int kRadix = 5;
  T c1, c2, s1, s2;  // cos and sin of 2 pi / 5 and 4 pi / 5
  void operator()(const C<T>* a, C<T>* b) const {
    const C<T> t1 = a[1] + a[4], t2 = a[2] + a[3];
    const C<T> d1 = a[1] - a[4], d2 = a[2] - a[3];
    const C<T> m1 = a[0] + t1 * c1 + t2 * c2;
    const C<T> m2 = a[0] + t1 * c2 + t2 * c1;
    // b1 = m1 - i (s1 d1 + s2 d2), b2 = m2 - i (s2 d1 - s1 d2); b4, b3 their mirror images.
    const C<T> n1 = mul_neg_i(d1 * s1 + d2 * s2);
    const C<T> n2 = mul_neg_i(d1 * s2 - d2 * s1);
    b[0] = a[0] + t1 + t2;
    b[1] = m1 + n1;
    b[4] = m1 - n1;
    b[2] = m2 + n2;
    b[3] = m2 - n2;
  }
};

// One stage of a written-out radix P. Twiddled is false on a stage whose sub-transforms have
// length P (m = 1: every twiddle is 1), which skips the multiplications. The loop over the s
// interleaved sequences is innermost where it is long; on the first stages (s small, m large) the
// loop over j is, so that neither trip count is 1.
template <class T, class Butterfly, bool Twiddled>
void radix_stage(const Butterfly& bf, int64_t length, int64_t stride,
                 const C<T>* __restrict twiddles, const C<T>* __restrict src,
                 C<T>* __restrict dst) {
  constexpr int P = Butterfly::kRadix;
  const int64_t m = length / P;
  const int64_t in_step = m * stride;  // between a butterfly's inputs
  auto butterfly = [&](int64_t j, int64_t q) {
    const C<T>* in = src + q + j * stride;
    C<T>* out = dst + q + P * j * stride;
    C<T> a[P], b[P];
    for (int r = 0; r < P; ++r) a[r] = in[r * in_step];
    bf(a, b);
    out[0] = b[0];
    const C<T>* w = twiddles + j * (P - 1);
    for (int u = 1; u < P; ++u) out[u * stride] = Twiddled ? mul(b[u], w[u - 1]) : b[u];
  };
  if (stride >= m) {
    for (int64_t j = 0; j < m; ++j) {
      for (int64_t q = 0; q < stride; ++q) butterfly(j, q);
    }
  } else {
    for (int64_t q = 0; q < stride; ++q) {
      for (int64_t j = 0; j < m; ++j) butterfly(j, q);
    }
  }
}

template <class T, class Butterfly>
void radix_stage(const Butterfly& bf, int64_t length, int64_t stride, const C<T>* twiddles,
                 const C<T>* src, C<T>* dst) {
  if (length == Butterfly::kRadix) {
    radix_stage<T, Butterfly, false>(bf, length, stride, twiddles, src, dst);
  } else {
    radix_stage<T, Butterfly, true>(bf, length, stride, twiddles, src, dst);
  }
}

// A stage of any odd radix p: b[u] = a0 + sum_{r=1}^{(p-1)/2} (cos(2 pi r u / p) (a_r + a_{p-r})
// - i sin(2 pi r u / p) (a_r - a_{p-r})), and b[p-u] the same with + i: half the products of the
// plain p^2 sum. roots[k] = exp(-2 pi i k / p); work holds 2 p values.
template <class T>
void generic_stage(int p, int64_t length, int64_t stride, const C<T>* twiddles, const C<T>* roots,
                   const C<T>* src, C<T>* dst, C<T>* work) {
  const int64_t m = length / p;
  const int half = (p - 1) / 2;
  C<T>* sums = work;          // sums[r] = a_r + a_{p-r}, r = 1 .. half
  C<T>* diffs = work + p;     // diffs[r] = a_r - a_{p-r}
  for (int64_t j = 0; j < m; ++j) {
    const C<T>* w = twiddles + j * (p - 1);
    for (int64_t q = 0; q < stride; ++q) {
      const C<T>* in = src + q + j * stride;
      C<T>* out = dst + q + p * j * stride;
      const C<T> a0 = in[0];
      C<T> b0 = a0;
      for (int r = 1; r <= half; ++r) {
        const C<T> ar = in[r * m * stride], br = in[(p - r) * m * stride];
        sums[r] = ar + br;
        diffs[r] = ar - br;
        b0 += sums[r];
      }
      out[0] = b0;
      for (int u = 1; u <= half; ++u) {
        C<T> re = a0, im{};  // b[u] = re + im, b[p-u] = re - im
        int k = 0;
        for (int r = 1; r <= half; ++r) {
          k += u;
          if (k >= p) k -= p;
          // roots[k] = cos - i sin: the cos part multiplies the sum, i * (-sin) the difference.
          re += sums[r] * roots[k].real();
          im += C<T>(-diffs[r].imag(), diffs[r].real()) * roots[k].imag();
        }
        out[u * stride] = mul(re + im, w[u - 1]);
        out[(p - u) * stride] = mul(re - im, w[p - u - 1]);
      }
    }
  }
}

// The radices in the order the stages take them: 4s, then 2, 3, 5, then the other primes.
std::vector<int> factorise(int64_t n) {
  std::vector<int> radices;
  while (n % 4 == 0) {
    radices.push_back(4);
    n /= 4;
  }
  for (int p : {2, 3, 5}) {
    while (n % p == 0) {
      radices.push_back(p);
      n /= p;
    }
  }
  for (int64_t p = 7; n > 1; p += 2) {
    if (p * p > n) p = n;  // what is left is prime
    while (n % p == 0) {
      radices.push_back(static_cast<int>(p));
      n /= p;
    }
  }
  return radices;
}

}  // namespace

template <class T>
ComplexFftPlan<T>::ComplexFftPlan(int64_t size) : size_(size) {
  if (size < 1 || size >= (int64_t{1} << 30)) {
    throw ArgumentError("complex FFT: the size must be >= 1 and < 2^30, got " +
                        std::to_string(size));
  }
  int max_radix = 1;
  int64_t length = size, stride = 1;
  for (int p : factorise(size)) {
    Stage st{p, length, stride, twiddles_.size(), generic_roots_.size()};
    const int64_t m = length / p;
    for (int64_t j = 0; j < m; ++j) {
      for (int u = 1; u < p; ++u) twiddles_.push_back(unit_root<T>(j * u, length));
    }
    if (p != 2 && p != 3 && p != 4 && p != 5) {
      for (int k = 0; k < p; ++k) generic_roots_.push_back(unit_root<T>(k, p));
    }
    stages_.push_back(st);
    max_radix = std::max(max_radix, p);
    length = m;
    stride *= p;
  }
  scratch_.resize(static_cast<size_t>(size + 2 * max_radix));
}

template <class T>
void ComplexFftPlan<T>::run_stage(const Stage& st, const C<T>* src, C<T>* dst) {
  const C<T>* tw = twiddles_.data() + st.twiddle_first;
  switch (st.radix) {
    case 4:
      radix_stage<T>(Radix4<T>{}, st.length, st.stride, tw, src, dst);
      return;
    case 2:
      radix_stage<T>(Radix2<T>{}, st.length, st.stride, tw, src, dst);
      return;
    case 3: {
      const C<T> w = unit_root<T>(1, 3);
      radix_stage<T>(Radix3<T>{-w.imag()}, st.length, st.stride, tw, src, dst);
      return;
    }
    case 5: {
      const C<T> w1 = unit_root<T>(1, 5), w2 = unit_root<T>(2, 5);
      radix_stage<T>(Radix5<T>{w1.real(), w2.real(), -w1.imag(), -w2.imag()}, st.length,
                     st.stride, tw, src, dst);
      return;
    }
    default:
      generic_stage<T>(st.radix, st.length, st.stride, tw,
                       generic_roots_.data() + st.constant_first, src, dst,
                       scratch_.data() + size_);
  }
}

template <class T>
void ComplexFftPlan<T>::forward(const C<T>* in, C<T>* out) {
  const size_t count = stages_.size();
  if (count == 0) {  // size 1
    out[0] = in[0];
    return;
  }
  // The last stage writes out; going backwards, the stages alternate scratch and out, so no stage
  // reads and writes the same buffer, and in is only read.
  const C<T>* src = in;
  for (size_t i = 0; i < count; ++i) {
    C<T>* dst = (count - 1 - i) % 2 == 0 ? out : scratch_.data();
    run_stage(stages_[i], src, dst);
    src = dst;
  }
}

template class ComplexFftPlan<float>;
template class ComplexFftPlan<double>;

}  // namespace hfport
