// Branch-free exp / sigmoid / tanh that compilers vectorise (the std:: versions are scalar library calls, which
// cost more than everything else in a small recurrent step). float: Cephes' expf polynomial, relative error
// ~2e-7; double keeps std::exp so float64 gradient checks see the exact function.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnkit {

inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln2) with the 1.5 * 2^23 trick (no rounding instruction needed)
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // x - n ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits - 0x4B400000 + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

inline double fast_exp(double x) { return std::exp(x); }

template <typename S>
inline S sigmoid(S x) { return S(1) / (S(1) + fast_exp(-x)); }

template <typename S>
inline S tanh_(S x) { return S(2) / (S(1) + fast_exp(-2 * x)) - S(1); }

inline double tanh_(double x) { return std::tanh(x); }

}  // namespace rnnkit
