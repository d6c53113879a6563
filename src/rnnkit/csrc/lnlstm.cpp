// Layer-norm LSTM over a whole sequence: forward and hand-written backward (equations: LayerNormLSTMCell).
// Input xw = x W_ih^T (B, T, 4H), batch-first as the layer holds it. Work that does not depend on the previous
// timestep (the input layer norm and bias; its backward; parameter-gradient sums) runs in bulk passes over all
// T*B rows, parallel over rows or columns. The time loop keeps only the recurrent critical path: per step one
// matrix product (StepLinear) and a few vectorised passes per batch row, rows split across threads. Big buffers
// come from the Workspace pool. Activations are stored time-major so each step's h_{t-1} is one (B, H) matrix.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fastmath.h"
#include "kernels.h"
#include "step_linear.h"
#include "workspace.h"

namespace rnnkit {
namespace {

// Rows per parallel chunk: enough element work per chunk (~2K) to pay for waking a thread.
inline int64_t grain(int64_t width) { return std::max<int64_t>(1, 2048 / std::max<int64_t>(width, 1)); }

// Rows per chunk of a timestep's loop: all of them (one thread, no synchronisation per step) unless the step's
// matrix product reaches parallel_macs multiply-adds. A parallel region per timestep costs a few microseconds on
// an idle machine and a scheduler time slice when the other core is busy.
inline int64_t step_grain(int64_t B, int64_t G, int64_t H, int64_t parallel_macs) {
  return B > 1 && B * G * H >= parallel_macs ? grain(G) : B;
}

template <typename S>
S mean_of(const S* x, int64_t n) {
  S s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += x[k];
  return s / n;
}

template <typename S>
S rstd_of(const S* x, S mean, int64_t n, S eps) {
  S s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += (x[k] - mean) * (x[k] - mean);
  return S(1) / std::sqrt(s / n + eps);
}

// Layer-norm backward for y = gamma * n, n = (x - mean) * r: dx = r * (dn - mean(dn) - n * mean(dn * n)).
template <typename S>
void ln_backward(const S* dy, const S* gamma, const S* n, S r, S* dx, int64_t len) {
  S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t k = 0; k < len; ++k) {
    s1 += dy[k] * gamma[k];
    s2 += dy[k] * gamma[k] * n[k];
  }
  s1 /= len;
  s2 /= len;
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) dx[k] = r * (dy[k] * gamma[k] - s1 - n[k] * s2);
}

struct Params {  // raw pointers to the small parameter vectors
  const void *g_ih, *b_ih, *g_hh, *lw, *lb;
};

struct Saved {  // activations kept for the backward pass, time-major
  at::Tensor hs, cs, ns, rs, acts, ms, rcs, taus, mu_ih, r_ih;
};

// u[t, b] = LN(xw[b, t]) * g_ih + b_ih for every row at once; saves the row statistics.
template <typename S>
void input_norm(const S* xw, S* u, S* mu, S* ri, const Params& prm, int64_t B, int64_t T, int64_t G, S eps) {
  const S *gi = static_cast<const S*>(prm.g_ih), *bi = static_cast<const S*>(prm.b_ih);
  at::parallel_for(0, T * B, grain(G), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const S* xb = xw + ((r % B) * T + r / B) * G;
      const S m = mean_of(xb, G), rr = rstd_of(xb, m, G, eps);
      mu[r] = m;
      ri[r] = rr;
      S* ub = u + r * G;
#pragma omp simd
      for (int64_t k = 0; k < G; ++k) ub[k] = (xb[k] - m) * rr * gi[k] + bi[k];
    }
  });
}

// d_xw = back through u = LN(xw) * g_ih + b_ih, for every row at once; also leaves LN(xw) in n_ih.
template <typename S>
void input_norm_backward(const S* xw, const S* d_u, const S* mu, const S* ri, const S* gi, S* n_ih, S* d_xw,
                         int64_t B, int64_t T, int64_t G) {
  at::parallel_for(0, T * B, grain(G), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t batch_first = ((r % B) * T + r / B) * G;
      const S* xb = xw + batch_first;
      S* nb = n_ih + r * G;
#pragma omp simd
      for (int64_t k = 0; k < G; ++k) nb[k] = (xb[k] - mu[r]) * ri[r];
      ln_backward(d_u + r * G, gi, nb, ri[r], d_xw + batch_first, G);
    }
  });
}

template <typename S>
void forward_loop(const S* u, at::Tensor& out, const StepLinear& w_hh, const Params& prm, const at::Tensor& mask,
                  S eps, bool save, Saved& sv, int64_t rows) {
  const int64_t T = out.size(1), B = out.size(0), H = sv.hs.size(2), G = 4 * H;
  const S *gh = static_cast<const S*>(prm.g_hh), *lw = static_cast<const S*>(prm.lw);
  const S* lb = static_cast<const S*>(prm.lb);
  const bool masked = mask.numel() > 0;
  S* op = out.data_ptr<S>();
  for (int64_t t = 0; t < T; ++t) {
    const S* hp = sv.hs.data_ptr<S>() + t * B * H;
    const S* cp = sv.cs.data_ptr<S>() + t * B * H;
    S* hn = sv.hs.data_ptr<S>() + (t + 1) * B * H;
    S* cn = sv.cs.data_ptr<S>() + (t + 1) * B * H;
    const S* mp = masked ? mask.data_ptr<S>() + t * B : nullptr;
    at::Tensor full;
    if (!w_hh.per_rows()) full = w_hh(sv.hs.select(0, t));  // (B, 4H) = h_{t-1} W_hh^T
    at::parallel_for(0, B, rows, [&](int64_t b0, int64_t b1) {
      std::vector<S> buf, scratch(3 * G + 2 * H);
      const S* ap = product_rows<S>(w_hh, hp, H, full.defined() ? full.data_ptr<S>() : nullptr, b0, b1, buf);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        const S* ab = ap + (b - b0) * G;
        S* z = scratch.data();
        S* nb = save ? sv.ns.data_ptr<S>() + row * G : z + G;
        S* sb = save ? sv.acts.data_ptr<S>() + row * G : z + 2 * G;
        S* mb = save ? sv.ms.data_ptr<S>() + row * H : z + 3 * G;
        S* tb = save ? sv.taus.data_ptr<S>() + row * H : z + 3 * G + H;
        const S* ub = u + row * G;
        const S mean = mean_of(ab, G), r = rstd_of(ab, mean, G, eps);
#pragma omp simd
        for (int64_t k = 0; k < G; ++k) {
          nb[k] = (ab[k] - mean) * r;
          z[k] = ub[k] + nb[k] * gh[k];
        }
#pragma omp simd
        for (int64_t k = 0; k < 2 * H; ++k) sb[k] = sigmoid(z[k]);  // i, f
#pragma omp simd
        for (int64_t k = 2 * H; k < 3 * H; ++k) sb[k] = tanh_(z[k]);  // g
#pragma omp simd
        for (int64_t k = 3 * H; k < G; ++k) sb[k] = sigmoid(z[k]);  // o
        S* cb = cn + b * H;
        const S* cpb = cp + b * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) cb[j] = sb[H + j] * cpb[j] + sb[j] * sb[2 * H + j];
        const S cmean = mean_of(cb, H), rc = rstd_of(cb, cmean, H, eps);
        S* hb = hn + b * H;
        S* ob = op + (b * T + t) * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          mb[j] = (cb[j] - cmean) * rc;
          tb[j] = tanh_(mb[j] * lw[j] + lb[j]);
          hb[j] = sb[3 * H + j] * tb[j];
          ob[j] = hb[j];
        }
        if (save) {
          sv.rs.data_ptr<S>()[row] = r;
          sv.rcs.data_ptr<S>()[row] = rc;
        }
        if (mp != nullptr && mp[b] == S(0)) {  // past the end: zero output, state held
          std::fill(ob, ob + H, S(0));
          std::copy(hp + b * H, hp + (b + 1) * H, hb);
          std::copy(cpb, cpb + H, cb);
        }
      }
    });
  }
}

template <typename S>
void backward_loop(const at::Tensor& d_out, at::Tensor& dh, at::Tensor& dc, const Saved& sv, const StepLinear& w_hh_t,
                   const Params& prm, const at::Tensor& mask, at::Tensor& d_gates, at::Tensor& d_a,
                   at::Tensor& d_hat, int64_t rows) {
  const int64_t B = d_out.size(0), T = d_out.size(1), H = dh.size(1), G = 4 * H;
  const S *gh = static_cast<const S*>(prm.g_hh), *lw = static_cast<const S*>(prm.lw);
  const bool masked = mask.numel() > 0;
  S* dhp = dh.data_ptr<S>();
  S* dcp = dc.data_ptr<S>();
  for (int64_t t = T - 1; t >= 0; --t) {
    const S* mp = masked ? mask.data_ptr<S>() + t * B : nullptr;
    auto held = [&](int64_t b) { return mp != nullptr && mp[b] == S(0); };
    at::parallel_for(0, B, rows, [&](int64_t b0, int64_t b1) {
      std::vector<S> buf, scratch(2 * H);
      S* dht = scratch.data();
      S* dmh = dht + H;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        S* dga = d_gates.data_ptr<S>() + row * G;
        S* dab = d_a.data_ptr<S>() + row * G;
        S* dhat = d_hat.data_ptr<S>() + row * H;
        if (held(b)) {  // held state: gradients pass straight through
          std::fill(dga, dga + G, S(0));
          std::fill(dab, dab + G, S(0));
          std::fill(dhat, dhat + H, S(0));
          continue;
        }
        const S* s = sv.acts.data_ptr<S>() + row * G;
        const S* tau = sv.taus.data_ptr<S>() + row * H;
        const S* m = sv.ms.data_ptr<S>() + row * H;
        const S* cprev = sv.cs.data_ptr<S>() + row * H;  // cs[t] is c_{t-1}
        const S* dob = d_out.data_ptr<S>() + (b * T + t) * H;
        S* dhb = dhp + b * H;
        S* dcb = dcp + b * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // through h = o * tanh(LN(c))
          dht[j] = dhb[j] + dob[j];
          dhat[j] = dht[j] * s[3 * H + j] * (S(1) - tau[j] * tau[j]);
        }
        ln_backward(dhat, lw, m, sv.rcs.data_ptr<S>()[row], dmh, H);  // dL/dc through the cell layer norm
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // through the cell update and the gates
          const S i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j];
          const S dcj = dcb[j] + dmh[j];
          dga[j] = dcj * g * i * (S(1) - i);
          dga[H + j] = dcj * cprev[j] * f * (S(1) - f);
          dga[2 * H + j] = dcj * i * (S(1) - g * g);
          dga[3 * H + j] = dht[j] * tau[j] * o * (S(1) - o);
          dcb[j] = dcj * f;
        }
        ln_backward(dga, gh, sv.ns.data_ptr<S>() + row * G, sv.rs.data_ptr<S>()[row], dab, G);  // LN(W_hh h)
      }
      // dh_{t-1} = d_a W_hh for this block's rows (held rows keep dh as it is)
      if constexpr (std::is_same_v<S, float>) {
        if (w_hh_t.per_rows()) {
          const S* prod = product_rows<S>(w_hh_t, d_a.data_ptr<S>() + t * B * G, G, (const S*)nullptr, b0, b1, buf);
          for (int64_t b = b0; b < b1; ++b)
            if (!held(b)) std::copy(prod + (b - b0) * H, prod + (b - b0 + 1) * H, dhp + b * H);
        }
      }
    });
    if (!w_hh_t.per_rows()) {
      const at::Tensor prod = w_hh_t(d_a.select(0, t));  // (B, H) = d_a W_hh
      const S* pp = prod.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b)
        if (!held(b)) std::copy(pp + b * H, pp + (b + 1) * H, dhp + b * H);
    }
  }
}

// Column sums over all T*B rows: out1[k] = sum_r a[r,k] * w[r,k], out2[k] = sum_r a[r,k] (if out2 given).
template <typename S>
void column_sums(const S* a, const S* w, int64_t rows, int64_t cols, S* out1, S* out2) {
  at::parallel_for(0, cols, std::max<int64_t>(16, cols / 2), [&](int64_t c0, int64_t c1) {
    for (int64_t k = c0; k < c1; ++k) out1[k] = 0;
    if (out2 != nullptr)
      for (int64_t k = c0; k < c1; ++k) out2[k] = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const S* ar = a + r * cols;
      const S* wr = w + r * cols;
#pragma omp simd
      for (int64_t k = c0; k < c1; ++k) out1[k] += ar[k] * wr[k];
      if (out2 != nullptr) {
#pragma omp simd
        for (int64_t k = c0; k < c1; ++k) out2[k] += ar[k];
      }
    }
  });
}

void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "lnlstm: ", name, " must be a contiguous CPU tensor");
}

}  // namespace

std::vector<at::Tensor> lnlstm_forward(const at::Tensor& xw, const at::Tensor& h0, const at::Tensor& c0,
                                       const at::Tensor& w_hh, const at::Tensor& g_ih, const at::Tensor& b_ih,
                                       const at::Tensor& g_hh, const at::Tensor& lw, const at::Tensor& lb,
                                       const at::Tensor& mask, double eps, bool save, int64_t parallel_macs) {
  for (const auto* p : {&xw, &h0, &c0, &w_hh, &g_ih, &b_ih, &g_hh, &lw, &lb}) check(*p, "every input");
  const int64_t B = xw.size(0), T = xw.size(1), H = h0.size(1), G = 4 * H;
  auto opts = xw.options();
  Saved sv;
  sv.hs = pooled_empty({T + 1, B, H}, opts);
  sv.cs = pooled_empty({T + 1, B, H}, opts);
  sv.hs.select(0, 0).copy_(h0);
  sv.cs.select(0, 0).copy_(c0);
  sv.mu_ih = at::empty({T, B}, opts);
  sv.r_ih = at::empty({T, B}, opts);
  auto u = pooled_empty({T, B, G}, opts);
  auto out = pooled_empty({B, T, H}, opts);
  if (save) {
    sv.ns = pooled_empty({T, B, G}, opts);
    sv.acts = pooled_empty({T, B, G}, opts);
    sv.ms = pooled_empty({T, B, H}, opts);
    sv.taus = pooled_empty({T, B, H}, opts);
    sv.rs = at::empty({T, B}, opts);
    sv.rcs = at::empty({T, B}, opts);
  }
  const StepLinear step(w_hh, B);
  const Params prm{g_ih.data_ptr(), b_ih.data_ptr(), g_hh.data_ptr(), lw.data_ptr(), lb.data_ptr()};
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "lnlstm_forward", [&] {
    using S = scalar_t;
    const S e = static_cast<S>(eps);
    input_norm<S>(xw.data_ptr<S>(), u.data_ptr<S>(), sv.mu_ih.data_ptr<S>(), sv.r_ih.data_ptr<S>(), prm, B, T, G, e);
    forward_loop<S>(u.data_ptr<S>(), out, step, prm, mask, e, save, sv, step_grain(B, G, H, parallel_macs));
  });
  return {out,   sv.hs.select(0, T).clone(), sv.cs.select(0, T).clone(), sv.hs, sv.cs, sv.ns, sv.rs, sv.acts, sv.ms,
          sv.rcs, sv.taus, sv.mu_ih, sv.r_ih};
}

std::vector<at::Tensor> lnlstm_backward(const at::Tensor& d_out_in, const at::Tensor& dhT, const at::Tensor& dcT,
                                        const at::Tensor& xw, const std::vector<at::Tensor>& saved,
                                        const at::Tensor& w_hh, const at::Tensor& g_ih, const at::Tensor& g_hh,
                                        const at::Tensor& lw, const at::Tensor& mask, int64_t parallel_macs) {
  auto d_out = d_out_in.contiguous();
  const int64_t B = d_out.size(0), T = d_out.size(1), H = dhT.size(1), G = 4 * H;
  Saved sv{saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6], saved[7], saved[8], saved[9]};
  auto dh = dhT.contiguous().clone(), dc = dcT.contiguous().clone();
  auto opts = d_out.options();
  auto d_gates = pooled_empty({T, B, G}, opts), d_a = pooled_empty({T, B, G}, opts);
  auto d_hat = pooled_empty({T, B, H}, opts), d_xw = pooled_empty({B, T, G}, opts);
  auto n_ih = pooled_empty({T, B, G}, opts);
  const StepLinear step_t(w_hh.t().contiguous(), B);
  const Params prm{g_ih.data_ptr(), nullptr, g_hh.data_ptr(), lw.data_ptr(), nullptr};
  auto dg_ih = at::empty({G}, opts), db_ih = at::empty({G}, opts), dg_hh = at::empty({G}, opts);
  auto dlw = at::empty({H}, opts), dlb = at::empty({H}, opts);
  AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "lnlstm_backward", [&] {
    using S = scalar_t;
    backward_loop<S>(d_out, dh, dc, sv, step_t, prm, mask, d_gates, d_a, d_hat, step_grain(B, G, H, parallel_macs));
    // Off the recurrent path, in bulk: back through the input layer norm, then the parameter-gradient sums.
    const S *dg = d_gates.data_ptr<S>(), *ni = n_ih.data_ptr<S>();
    input_norm_backward<S>(xw.data_ptr<S>(), dg, sv.mu_ih.data_ptr<S>(), sv.r_ih.data_ptr<S>(), g_ih.data_ptr<S>(),
                           n_ih.data_ptr<S>(), d_xw.data_ptr<S>(), B, T, G);
    column_sums<S>(dg, ni, T * B, G, dg_ih.data_ptr<S>(), db_ih.data_ptr<S>());
    column_sums<S>(dg, sv.ns.data_ptr<S>(), T * B, G, dg_hh.data_ptr<S>(), nullptr);
    column_sums<S>(d_hat.data_ptr<S>(), sv.ms.data_ptr<S>(), T * B, H, dlw.data_ptr<S>(), dlb.data_ptr<S>());
  });
  auto d_w = matmul_tn(d_a.view({T * B, G}), sv.hs.narrow(0, 0, T).reshape({T * B, H}));
  return {d_xw, dh, dc, d_w, dg_ih, db_ih, dg_hh, dlw, dlb};
}

}  // namespace rnnkit
