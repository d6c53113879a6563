// One row of one timestep of the standard cells, forward and backward, for recurrence.cpp's time loop.
// Equations and gate order as torch.nn (and rnnkit/cells/{lstm,gru,rnn}.py); x is the row of x W_ih^T + b_ih,
// a the row of h_{t-1} W_hh^T (without b_hh, which is added here).
//
// Forward(H, x, a, bh, h, c, h', c', saved). Backward gets dh = dL/dh_t (output and recurrent parts summed) and,
// for the LSTM, dc = dL/dc_t; it writes dx = dL/d(x row), da = dL/d(a row) (also dL/db_hh), dh_direct = the part
// of dL/dh_{t-1} that does not pass through W_hh, and dc_prev = dL/dc_{t-1}.
#pragma once
#include <cstdint>

#include "fastmath.h"

namespace rnnkit {

enum Mode : int64_t { kLSTM = 0, kGRU = 1, kRNNTanh = 2, kRNNReLU = 3 };

// i, f, g, o = sigma, sigma, tanh, sigma (x + a + b_hh); c' = f c + i g; h' = o tanh(c'). saved: i, f, g, o, tanh c'.
struct LSTMRow {
  static constexpr int kGates = 4, kSaved = 5;
  template <typename S>
  static void forward(int64_t H, const S* x, const S* a, const S* bh, const S* h, const S* c, S* hn, S* cn, S* sv) {
    (void)h;
#pragma omp simd
    for (int64_t k = 0; k < 2 * H; ++k) sv[k] = sigmoid(x[k] + a[k] + bh[k]);  // i, f
#pragma omp simd
    for (int64_t k = 2 * H; k < 3 * H; ++k) sv[k] = tanh_(x[k] + a[k] + bh[k]);  // g
#pragma omp simd
    for (int64_t k = 3 * H; k < 4 * H; ++k) sv[k] = sigmoid(x[k] + a[k] + bh[k]);  // o
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      cn[j] = sv[H + j] * c[j] + sv[j] * sv[2 * H + j];
      sv[4 * H + j] = tanh_(cn[j]);
      hn[j] = sv[3 * H + j] * sv[4 * H + j];
    }
  }
  template <typename S>
  static void backward(int64_t H, const S* dh, S* dc, const S* h, const S* c, const S* hn, const S* sv, S* dx, S* da,
                       S* dh_direct) {
    (void)h, (void)hn, (void)dh_direct;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S i = sv[j], f = sv[H + j], g = sv[2 * H + j], o = sv[3 * H + j], tc = sv[4 * H + j];
      const S dct = dc[j] + dh[j] * o * (S(1) - tc * tc);
      da[j] = dx[j] = dct * g * i * (S(1) - i);
      da[H + j] = dx[H + j] = dct * c[j] * f * (S(1) - f);
      da[2 * H + j] = dx[2 * H + j] = dct * i * (S(1) - g * g);
      da[3 * H + j] = dx[3 * H + j] = dh[j] * tc * o * (S(1) - o);
      dc[j] = dct * f;
    }
  }
};

// r, z = sigma(x + a + b_hh); n = tanh(x_n + r (a_n + b_hn)); h' = (1 - z) n + z h. saved: r, z, n, a_n + b_hn.
struct GRURow {
  static constexpr int kGates = 3, kSaved = 4;
  template <typename S>
  static void forward(int64_t H, const S* x, const S* a, const S* bh, const S* h, const S* c, S* hn, S* cn, S* sv) {
    (void)c, (void)cn;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S r = sigmoid(x[j] + a[j] + bh[j]);
      const S z = sigmoid(x[H + j] + a[H + j] + bh[H + j]);
      const S an = a[2 * H + j] + bh[2 * H + j];
      const S n = tanh_(x[2 * H + j] + r * an);
      sv[j] = r;
      sv[H + j] = z;
      sv[2 * H + j] = n;
      sv[3 * H + j] = an;
      hn[j] = n + z * (h[j] - n);
    }
  }
  template <typename S>
  static void backward(int64_t H, const S* dh, S* dc, const S* h, const S* c, const S* hn, const S* sv, S* dx, S* da,
                       S* dh_direct) {
    (void)dc, (void)c, (void)hn;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S r = sv[j], z = sv[H + j], n = sv[2 * H + j], an = sv[3 * H + j];
      const S dpn = dh[j] * (S(1) - z) * (S(1) - n * n);
      const S dpr = dpn * an * r * (S(1) - r);
      const S dpz = dh[j] * (h[j] - n) * z * (S(1) - z);
      da[j] = dx[j] = dpr;
      da[H + j] = dx[H + j] = dpz;
      dx[2 * H + j] = dpn;
      da[2 * H + j] = dpn * r;
      dh_direct[j] = dh[j] * z;
    }
  }
};

// h' = tanh or relu (x + a + b_hh). Nothing saved: the backward reads h'.
template <bool kRelu>
struct RNNRow {
  static constexpr int kGates = 1, kSaved = 0;
  template <typename S>
  static void forward(int64_t H, const S* x, const S* a, const S* bh, const S* h, const S* c, S* hn, S* cn, S* sv) {
    (void)h, (void)c, (void)cn, (void)sv;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S z = x[j] + a[j] + bh[j];
      hn[j] = kRelu ? (z > S(0) ? z : S(0)) : tanh_(z);
    }
  }
  template <typename S>
  static void backward(int64_t H, const S* dh, S* dc, const S* h, const S* c, const S* hn, const S* sv, S* dx, S* da,
                       S* dh_direct) {
    (void)dc, (void)h, (void)c, (void)sv, (void)dh_direct;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j)
      da[j] = dx[j] = kRelu ? (hn[j] > S(0) ? dh[j] : S(0)) : dh[j] * (S(1) - hn[j] * hn[j]);
  }
};

}  // namespace rnnkit
