// minGRU and minLSTM over a whole sequence from their projected inputs, forward and backward in one pass each
// (equations: rnnkit/cells/mingru.py). The gates see only the input, so a step is element-wise: what costs time is
// not arithmetic but passes over memory, and the Python path made about twenty of them (softplus, logs, exps,
// masks, each with its autograd node) around the scan. Here the gates, the recurrence and the lengths are one walk
// over u (B, T, G*H) per direction of time, each batch row independent (rows split over threads).
//
//   minGRU (u = k_z, k_h):       z = sigma(k_z), h~ = g(k_h), h_t = (1 - z) h_{t-1} + z h~
//   minLSTM (u = k_f, k_i, k_h): i' = i / (f + i) with f, i = sigma(k_f), sigma(k_i); h_t = (1 - i') h_{t-1} + i' h~
//   g(x) = x + 1/2 (x >= 0), sigma(x) (x < 0)
// i' is computed as A / (A + B) with A = e^-m + e^(-k_f - m), B = e^-m + e^(-k_i - m), m = max(-k_f, -k_i, 0): the
// same number as f / (f + i) without overflow or 0/0 when both gates are tiny. Past a row's length the state is
// held and the output is zero.
#include <ATen/Parallel.h>

#include <algorithm>

#include "fastmath.h"
#include "kernels.h"
#include "workspace.h"

namespace rnnkit {
namespace {

// Every value below is computed unconditionally and then selected, and minGRU/minLSTM is a template argument: a
// loop with a branch in it (a runtime minGRU/minLSTM flag, a sigmoid evaluated on one side of ?:) is not vectorised
// by the compiler, and that scalar walk was 4x to 25x slower than this one (one thread, the sizes of
// benchmarks/speed.py), minLSTM's three exponentials per element the most.
template <typename S>
struct Cand {  // g(k_h) and g'(k_h)
  S g, dg;
  explicit Cand(S x) {
    const S s = sigmoid(x);
    const bool pos = x >= S(0);
    g = pos ? x + S(0.5) : s;
    dg = pos ? S(1) : s * (S(1) - s);
  }
};

// The mixing weight w of the candidate (z, or i') and the factors that carry dL/d(logit w) to the gate
// pre-activations: k_z gets 1; k_f gets -(1 - f) and k_i gets (1 - i), since logit i' = log i - log f. With
// e^-m scaled terms A = e^-m (1 + e^-k_f), B = e^-m (1 + e^-k_i): i' = A / (A + B), 1 - f = e^(-k_f - m) / A,
// 1 - i = e^(-k_i - m) / B (three exponentials for all of it).
template <typename S, bool LSTM>
struct Mix {
  S w, cf, ci;
  Mix(const S* u, int64_t H, int64_t j) {
    if constexpr (LSTM) {
      const S nf = -u[j], ni = -u[H + j];
      const S m = std::max(std::max(nf, ni), S(0));
      const S em = fast_exp(-m), ef = fast_exp(nf - m), ei = fast_exp(ni - m);
      const S a = em + ef, b = em + ei;
      w = a / (a + b);
      cf = -ef / a;
      ci = ei / b;
    } else {
      w = sigmoid(u[j]);
      cf = S(1);
      ci = S(0);
    }
  }
};

template <typename S, bool LSTM>
void forward_rows(const S* u, const S* h0, const int64_t* len, S* out, S* hT, int64_t B, int64_t T, int64_t H) {
  constexpr int64_t kG = LSTM ? 3 : 2, kCand = kG - 1;
  const int64_t G = kG * H, cand = kCand * H;
  at::parallel_for(0, B, std::max<int64_t>(1, 8192 / std::max<int64_t>(T * H, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = len != nullptr ? len[b] : T;
      S* h = hT + b * H;
      std::copy(h0 + b * H, h0 + (b + 1) * H, h);
      for (int64_t t = 0; t < n; ++t) {
        const S* ub = u + (b * T + t) * G;
        S* ob = out + (b * T + t) * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const S w = Mix<S, LSTM>(ub, H, j).w, c = Cand<S>(ub[cand + j]).g;
          const S hj = h[j] + w * (c - h[j]);
          h[j] = hj;
          ob[j] = hj;
        }
      }
      std::fill(out + (b * T + n) * H, out + (b + 1) * T * H, S(0));
    }
  });
}

template <typename S, bool LSTM>
void backward_rows(const S* d_out, const S* dhT, const S* u, const S* out, const S* h0, const int64_t* len, S* d_u,
                   S* dh0, int64_t B, int64_t T, int64_t H) {
  constexpr int64_t kG = LSTM ? 3 : 2, kCand = kG - 1;
  const int64_t G = kG * H, cand = kCand * H;
  at::parallel_for(0, B, std::max<int64_t>(1, 8192 / std::max<int64_t>(T * H, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = len != nullptr ? len[b] : T;
      S* dh = dh0 + b * H;  // dL/dh_t flowing backwards; ends as dL/dh0
      std::copy(dhT + b * H, dhT + (b + 1) * H, dh);
      std::fill(d_u + (b * T + n) * G, d_u + (b + 1) * T * G, S(0));  // padded steps: no gradient
      for (int64_t t = n - 1; t >= 0; --t) {
        const S* ub = u + (b * T + t) * G;
        const S* dob = d_out + (b * T + t) * H;
        const S* prev = t > 0 ? out + (b * T + t - 1) * H : h0 + b * H;
        S* db = d_u + (b * T + t) * G;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const Mix<S, LSTM> mx(ub, H, j);
          const Cand<S> c(ub[cand + j]);
          const S d = dh[j] + dob[j], w = mx.w;
          const S dw = d * (c.g - prev[j]) * w * (S(1) - w);  // dL/d(logit of w)
          db[j] = dw * mx.cf;
          if constexpr (LSTM) db[H + j] = dw * mx.ci;
          db[cand + j] = d * w * c.dg;
          dh[j] = d * (S(1) - w);
        }
      }
    }
  });
}

void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "minrnn: ", name, " must be a contiguous CPU tensor");
}

const int64_t* lengths_of(const at::Tensor& lengths, int64_t B) {
  if (lengths.numel() == 0) return nullptr;
  TORCH_CHECK(lengths.scalar_type() == at::kLong && lengths.numel() == B && lengths.is_contiguous(),
              "minrnn: lengths must be a contiguous int64 (B,) tensor or empty");
  return lengths.data_ptr<int64_t>();
}

}  // namespace

std::vector<at::Tensor> minrnn_forward(const at::Tensor& u, const at::Tensor& h0, const at::Tensor& lengths,
                                       bool lstm) {
  check(u, "u");
  check(h0, "h0");
  const int64_t B = u.size(0), T = u.size(1), H = h0.size(1);
  TORCH_CHECK(u.size(2) == (lstm ? 3 : 2) * H, "minrnn: u must be (B, T, ", lstm ? 3 : 2, "H)");
  auto out = pooled_empty({B, T, H}, u.options());
  auto hT = at::empty({B, H}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "minrnn_forward", [&] {
    auto run = lstm ? forward_rows<scalar_t, true> : forward_rows<scalar_t, false>;
    run(u.data_ptr<scalar_t>(), h0.data_ptr<scalar_t>(), lengths_of(lengths, B), out.data_ptr<scalar_t>(),
        hT.data_ptr<scalar_t>(), B, T, H);
  });
  return {out, hT};
}

std::vector<at::Tensor> minrnn_backward(const at::Tensor& d_out_in, const at::Tensor& dhT_in, const at::Tensor& u,
                                        const at::Tensor& out, const at::Tensor& h0, const at::Tensor& lengths,
                                        bool lstm) {
  auto d_out = d_out_in.contiguous(), dhT = dhT_in.contiguous();
  const int64_t B = u.size(0), T = u.size(1), H = h0.size(1);
  auto d_u = pooled_empty(u.sizes(), u.options());
  auto dh0 = at::empty({B, H}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "minrnn_backward", [&] {
    auto run = lstm ? backward_rows<scalar_t, true> : backward_rows<scalar_t, false>;
    run(d_out.data_ptr<scalar_t>(), dhT.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
        h0.data_ptr<scalar_t>(), lengths_of(lengths, B), d_u.data_ptr<scalar_t>(), dh0.data_ptr<scalar_t>(), B, T,
        H);
  });
  return {d_u, dh0};
}

}  // namespace rnnkit
