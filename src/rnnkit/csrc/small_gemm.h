// out (M, N) = x (M, K) @ wt (K, N) for the small products of one recurrent step, on a block of rows a thread
// already owns. A library call costs more than the arithmetic at these sizes (16 x 64 x 256 is ~5 us of work), so
// this is a register-tiled kernel of our own: with AVX-512, tiles of 4 rows x 64 columns (16 accumulators in zmm
// registers) sweep K once, loading each 64-wide row slice of wt once per 4 rows; column tails are masked and a short
// last row block repeats a row, so any M and N work. Without AVX-512 (the generic build): a plain loop the compiler
// vectorises.
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace rnnkit {

#if defined(__AVX512F__)
// One tile: rows x0..x3 (pointers, so a short last block repeats a row and drops its result) times the 64 columns
// of wt at w, into o0..o3. m[v] masks the columns of each 16-wide vector that exist. Sixteen named accumulators:
// an array of them makes GCC store every one to the stack on every k.
inline void gemm_tile(const float* x0, const float* x1, const float* x2, const float* x3, int64_t K, const float* w,
                      int64_t N, float* o0, float* o1, float* o2, float* o3, int rows, const __mmask16* m) {
  __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  for (int64_t k = 0; k < K; ++k, w += N) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m[0], w), b1 = _mm512_maskz_loadu_ps(m[1], w + 16);
    const __m512 b2 = _mm512_maskz_loadu_ps(m[2], w + 32), b3 = _mm512_maskz_loadu_ps(m[3], w + 48);
    __m512 x = _mm512_set1_ps(x0[k]);
    a00 = _mm512_fmadd_ps(x, b0, a00), a01 = _mm512_fmadd_ps(x, b1, a01);
    a02 = _mm512_fmadd_ps(x, b2, a02), a03 = _mm512_fmadd_ps(x, b3, a03);
    x = _mm512_set1_ps(x1[k]);
    a10 = _mm512_fmadd_ps(x, b0, a10), a11 = _mm512_fmadd_ps(x, b1, a11);
    a12 = _mm512_fmadd_ps(x, b2, a12), a13 = _mm512_fmadd_ps(x, b3, a13);
    x = _mm512_set1_ps(x2[k]);
    a20 = _mm512_fmadd_ps(x, b0, a20), a21 = _mm512_fmadd_ps(x, b1, a21);
    a22 = _mm512_fmadd_ps(x, b2, a22), a23 = _mm512_fmadd_ps(x, b3, a23);
    x = _mm512_set1_ps(x3[k]);
    a30 = _mm512_fmadd_ps(x, b0, a30), a31 = _mm512_fmadd_ps(x, b1, a31);
    a32 = _mm512_fmadd_ps(x, b2, a32), a33 = _mm512_fmadd_ps(x, b3, a33);
  }
  auto store = [&](float* o, __m512 c0, __m512 c1, __m512 c2, __m512 c3) {
    _mm512_mask_storeu_ps(o, m[0], c0), _mm512_mask_storeu_ps(o + 16, m[1], c1);
    _mm512_mask_storeu_ps(o + 32, m[2], c2), _mm512_mask_storeu_ps(o + 48, m[3], c3);
  };
  store(o0, a00, a01, a02, a03);
  if (rows > 1) store(o1, a10, a11, a12, a13);
  if (rows > 2) store(o2, a20, a21, a22, a23);
  if (rows > 3) store(o3, a30, a31, a32, a33);
}
#endif

inline void small_gemm(const float* x, const float* wt, float* out, int64_t M, int64_t K, int64_t N) {
#if defined(__AVX512F__)
  for (int64_t n0 = 0; n0 < N; n0 += 64) {  // a 64-column slice of wt stays in L1 while every row block uses it
    __mmask16 m[4];
    for (int v = 0; v < 4; ++v) {
      const int64_t left = std::clamp<int64_t>(N - n0 - 16 * v, 0, 16);
      m[v] = static_cast<__mmask16>((1u << left) - 1u);
    }
    for (int64_t m0 = 0; m0 < M; m0 += 4) {
      const int rows = static_cast<int>(std::min<int64_t>(4, M - m0));
      const float* xr[4];
      for (int r = 0; r < 4; ++r) xr[r] = x + (m0 + std::min(r, rows - 1)) * K;
      float* o = out + m0 * N + n0;
      gemm_tile(xr[0], xr[1], xr[2], xr[3], K, wt + n0, N, o, o + N, o + 2 * N, o + 3 * N, rows, m);
    }
  }
#else
  for (int64_t m = 0; m < M; ++m) {
    float* __restrict__ o = out + m * N;
    std::fill(o, o + N, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      const float xv = x[m * K + k];
      const float* w = wt + k * N;
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) o[n] += xv * w[n];
    }
  }
#endif
}

}  // namespace rnnkit
