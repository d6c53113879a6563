// Layer-norm LSTM over a whole sequence: forward and hand-written backward (equations: LayerNormLSTMCell).
// Time-major tensors; u = LN(W_ih x) * g_ih + b is precomputed, shape (T, B, 4H). Per timestep the only library
// call is one matrix product (StepLinear); the two layer norms, the four gates and the cell update are a few
// vectorised passes over each batch row. The backward replays the saved activations in reverse and gets the
// recurrent weight gradient as one product over all timesteps.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fastmath.h"
#include "kernels.h"
#include "step_linear.h"

namespace rnnkit {
namespace {

inline int64_t grain(int64_t width) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(width, 1)); }

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

struct Saved {  // per-timestep activations kept for the backward pass
  at::Tensor ns, rs, acts, ms, rcs, taus;
};

template <typename S>
void forward_loop(const at::Tensor& u, at::Tensor& hs, at::Tensor& cs, at::Tensor& out, const StepLinear& w_hh,
                  const at::Tensor& g_hh, const at::Tensor& lw, const at::Tensor& lb, const at::Tensor& mask,
                  double eps_d, bool save, Saved& sv) {
  const int64_t T = u.size(0), B = u.size(1), H = hs.size(2), G = 4 * H;
  const S eps = static_cast<S>(eps_d);
  const S* gp = g_hh.data_ptr<S>();
  const S* lwp = lw.data_ptr<S>();
  const S* lbp = lb.data_ptr<S>();
  const bool masked = mask.numel() > 0;
  for (int64_t t = 0; t < T; ++t) {
    const at::Tensor a = w_hh(hs.select(0, t));  // (B, 4H) = h_{t-1} W_hh^T
    const S* ap = a.data_ptr<S>();
    const S* up = u.data_ptr<S>() + t * B * G;
    const S* hp = hs.data_ptr<S>() + t * B * H;
    const S* cp = cs.data_ptr<S>() + t * B * H;
    S* hn = hs.data_ptr<S>() + (t + 1) * B * H;
    S* cn = cs.data_ptr<S>() + (t + 1) * B * H;
    S* op = out.data_ptr<S>() + t * B * H;
    const S* mp = masked ? mask.data_ptr<S>() + t * B : nullptr;
    at::parallel_for(0, B, grain(G), [&](int64_t b0, int64_t b1) {
      std::vector<S> scratch(3 * G + 2 * H);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        const S* ab = ap + b * G;
        const S* ub = up + b * G;
        S* z = scratch.data();
        S* nb = save ? sv.ns.data_ptr<S>() + row * G : z + G;
        S* sb = save ? sv.acts.data_ptr<S>() + row * G : z + 2 * G;
        S* mb = save ? sv.ms.data_ptr<S>() + row * H : z + 3 * G;
        S* tb = save ? sv.taus.data_ptr<S>() + row * H : z + 3 * G + H;
        const S mean = mean_of(ab, G), r = rstd_of(ab, mean, G, eps);
#pragma omp simd
        for (int64_t k = 0; k < G; ++k) {
          nb[k] = (ab[k] - mean) * r;
          z[k] = ub[k] + nb[k] * gp[k];
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
        S* ob = op + b * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          mb[j] = (cb[j] - cmean) * rc;
          tb[j] = tanh_(mb[j] * lwp[j] + lbp[j]);
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
void backward_loop(const at::Tensor& d_out, at::Tensor& dh, at::Tensor& dc, const at::Tensor& cs, const Saved& sv,
                   const StepLinear& w_hh_t, const at::Tensor& g_hh, const at::Tensor& lw, const at::Tensor& mask,
                   at::Tensor& d_gates, at::Tensor& d_a, at::Tensor& d_hat) {
  const int64_t T = d_out.size(0), B = d_out.size(1), H = dh.size(1), G = 4 * H;
  const S* gp = g_hh.data_ptr<S>();
  const S* lwp = lw.data_ptr<S>();
  const bool masked = mask.numel() > 0;
  for (int64_t t = T - 1; t >= 0; --t) {
    const S* mp = masked ? mask.data_ptr<S>() + t * B : nullptr;
    S* dhp = dh.data_ptr<S>();
    S* dcp = dc.data_ptr<S>();
    at::parallel_for(0, B, grain(G), [&](int64_t b0, int64_t b1) {
      std::vector<S> scratch(2 * H);
      S* dht = scratch.data();
      S* dmh = dht + H;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        S* dga = d_gates.data_ptr<S>() + row * G;
        S* dab = d_a.data_ptr<S>() + row * G;
        S* dhat = d_hat.data_ptr<S>() + row * H;
        if (mp != nullptr && mp[b] == S(0)) {  // held state: gradients pass straight through
          std::fill(dga, dga + G, S(0));
          std::fill(dab, dab + G, S(0));
          std::fill(dhat, dhat + H, S(0));
          continue;
        }
        const S* s = sv.acts.data_ptr<S>() + row * G;
        const S* tau = sv.taus.data_ptr<S>() + row * H;
        const S* m = sv.ms.data_ptr<S>() + row * H;
        const S* cprev = cs.data_ptr<S>() + row * H;  // cs[t] is c_{t-1}
        const S* nb = sv.ns.data_ptr<S>() + row * G;
        const S* dob = d_out.data_ptr<S>() + row * H;
        S* dhb = dhp + b * H;
        S* dcb = dcp + b * H;
        const S rc = sv.rcs.data_ptr<S>()[row], r = sv.rs.data_ptr<S>()[row];
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // through h = o * tanh(LN(c))
          dht[j] = dhb[j] + dob[j];
          dhat[j] = dht[j] * s[3 * H + j] * (S(1) - tau[j] * tau[j]);
          dmh[j] = dhat[j] * lwp[j];
        }
        S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t j = 0; j < H; ++j) {
          s1 += dmh[j];
          s2 += dmh[j] * m[j];
        }
        s1 /= H;
        s2 /= H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // through the cell update and the gates
          const S i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j];
          const S dcj = dcb[j] + rc * (dmh[j] - s1 - m[j] * s2);
          dga[j] = dcj * g * i * (S(1) - i);
          dga[H + j] = dcj * cprev[j] * f * (S(1) - f);
          dga[2 * H + j] = dcj * i * (S(1) - g * g);
          dga[3 * H + j] = dht[j] * tau[j] * o * (S(1) - o);
          dcb[j] = dcj * f;
        }
        S s3 = 0, s4 = 0;
#pragma omp simd reduction(+ : s3, s4)
        for (int64_t k = 0; k < G; ++k) {
          s3 += dga[k] * gp[k];
          s4 += dga[k] * gp[k] * nb[k];
        }
        s3 /= G;
        s4 /= G;
#pragma omp simd
        for (int64_t k = 0; k < G; ++k) dab[k] = r * (dga[k] * gp[k] - s3 - nb[k] * s4);  // through LN(W_hh h)
      }
    });
    const at::Tensor dh_mm = w_hh_t(d_a.select(0, t));  // (B, H) = d_a W_hh
    const S* mmp = dh_mm.data_ptr<S>();
    for (int64_t b = 0; b < B; ++b) {
      if (mp != nullptr && mp[b] == S(0)) continue;
      std::copy(mmp + b * H, mmp + (b + 1) * H, dhp + b * H);
    }
  }
}

void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "lnlstm: ", name, " must be a contiguous CPU tensor");
}

}  // namespace

// Returns [out (T,B,H), h_T, c_T, hs (T+1,B,H), cs (T+1,B,H), ns, rs, acts, ms, rcs, taus].
std::vector<at::Tensor> lnlstm_forward(const at::Tensor& u, const at::Tensor& h0, const at::Tensor& c0,
                                       const at::Tensor& w_hh, const at::Tensor& g_hh, const at::Tensor& lw,
                                       const at::Tensor& lb, const at::Tensor& mask, double eps, bool save) {
  for (const auto* p : {&u, &h0, &c0, &w_hh, &g_hh, &lw, &lb}) check(*p, "every input");
  const int64_t T = u.size(0), B = u.size(1), H = h0.size(1), G = 4 * H;
  auto opts = u.options();
  auto hs = at::empty({T + 1, B, H}, opts), cs = at::empty({T + 1, B, H}, opts);
  hs.select(0, 0).copy_(h0);
  cs.select(0, 0).copy_(c0);
  auto out = at::empty({T, B, H}, opts);
  Saved sv;
  if (save) {
    sv.ns = at::empty({T, B, G}, opts);
    sv.acts = at::empty({T, B, G}, opts);
    sv.rs = at::empty({T, B}, opts);
    sv.rcs = at::empty({T, B}, opts);
    sv.ms = at::empty({T, B, H}, opts);
    sv.taus = at::empty({T, B, H}, opts);
  }
  const StepLinear step(w_hh, B);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "lnlstm_forward", [&] {
    forward_loop<scalar_t>(u, hs, cs, out, step, g_hh, lw, lb, mask, eps, save, sv);
  });
  return {out, hs.select(0, T).clone(), cs.select(0, T).clone(), hs, cs, sv.ns, sv.rs, sv.acts, sv.ms, sv.rcs,
          sv.taus};
}

// Returns [d_u (T,B,4H), dh0, dc0, dW_hh, dg_hh, dlw, dlb].
std::vector<at::Tensor> lnlstm_backward(const at::Tensor& d_out, const at::Tensor& dhT, const at::Tensor& dcT,
                                        const at::Tensor& hs, const at::Tensor& cs, const at::Tensor& ns,
                                        const at::Tensor& rs, const at::Tensor& acts, const at::Tensor& ms,
                                        const at::Tensor& rcs, const at::Tensor& taus, const at::Tensor& w_hh,
                                        const at::Tensor& g_hh, const at::Tensor& lw, const at::Tensor& mask) {
  check(d_out, "d_out");
  const int64_t T = d_out.size(0), B = d_out.size(1), H = dhT.size(1), G = 4 * H;
  auto dh = dhT.contiguous().clone(), dc = dcT.contiguous().clone();
  auto d_gates = at::empty({T, B, G}, d_out.options());
  auto d_a = at::empty({T, B, G}, d_out.options());
  auto d_hat = at::empty({T, B, H}, d_out.options());
  Saved sv{ns, rs, acts, ms, rcs, taus};
  const StepLinear step_t(w_hh.t().contiguous(), B);
  AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "lnlstm_backward", [&] {
    backward_loop<scalar_t>(d_out, dh, dc, cs, sv, step_t, g_hh, lw, mask, d_gates, d_a, d_hat);
  });
  auto d_w = matmul_tn(d_a.view({T * B, G}), hs.narrow(0, 0, T).reshape({T * B, H}));
  return {d_gates, dh, dc, d_w, (d_gates * ns).sum({0, 1}), (d_hat * ms).sum({0, 1}), d_hat.sum({0, 1})};
}

}  // namespace rnnkit
