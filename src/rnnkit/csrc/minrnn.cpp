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

template <typename S>
inline S g_of(S x) { return x >= S(0) ? x + S(0.5) : sigmoid(x); }

template <typename S>
inline S dg_of(S x) {
  const S s = sigmoid(x);
  return x >= S(0) ? S(1) : s * (S(1) - s);
}

// The mixing weight of the candidate (z, or i') and its derivatives with respect to the gate pre-activations.
template <typename S>
inline S mix(const S* u, int64_t H, int64_t j, bool lstm) {
  if (!lstm) return sigmoid(u[j]);
  const S nf = -u[j], ni = -u[H + j];
  const S m = std::max(std::max(nf, ni), S(0));
  const S em = fast_exp(-m), a = em + fast_exp(nf - m), b = em + fast_exp(ni - m);
  return a / (a + b);
}

template <typename S>
void forward_rows(const S* u, const S* h0, const int64_t* len, S* out, S* hT, int64_t B, int64_t T, int64_t H,
                  bool lstm) {
  const int64_t G = (lstm ? 3 : 2) * H, cand = (lstm ? 2 : 1) * H;
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
          const S w = mix(ub, H, j, lstm);
          h[j] = h[j] + w * (g_of(ub[cand + j]) - h[j]);
          ob[j] = h[j];
        }
      }
      std::fill(out + (b * T + n) * H, out + (b + 1) * T * H, S(0));
    }
  });
}

template <typename S>
void backward_rows(const S* d_out, const S* dhT, const S* u, const S* out, const S* h0, const int64_t* len, S* d_u,
                   S* dh0, int64_t B, int64_t T, int64_t H, bool lstm) {
  const int64_t G = (lstm ? 3 : 2) * H, cand = (lstm ? 2 : 1) * H;
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
          const S d = dh[j] + dob[j], w = mix(ub, H, j, lstm), kh = ub[cand + j];
          const S dw = d * (g_of(kh) - prev[j]) * w * (S(1) - w);  // dL/d(logit of w)
          if (lstm) {  // logit(i') = log i - log f: its gradient reaches k_f through -(1 - f), k_i through (1 - i)
            db[j] = -dw * (S(1) - sigmoid(ub[j]));
            db[H + j] = dw * (S(1) - sigmoid(ub[H + j]));
          } else {
            db[j] = dw;
          }
          db[cand + j] = d * w * dg_of(kh);
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
    forward_rows<scalar_t>(u.data_ptr<scalar_t>(), h0.data_ptr<scalar_t>(), lengths_of(lengths, B),
                           out.data_ptr<scalar_t>(), hT.data_ptr<scalar_t>(), B, T, H, lstm);
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
    backward_rows<scalar_t>(d_out.data_ptr<scalar_t>(), dhT.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(),
                            out.data_ptr<scalar_t>(), h0.data_ptr<scalar_t>(), lengths_of(lengths, B),
                            d_u.data_ptr<scalar_t>(), dh0.data_ptr<scalar_t>(), B, T, H, lstm);
  });
  return {d_u, dh0};
}

}  // namespace rnnkit
