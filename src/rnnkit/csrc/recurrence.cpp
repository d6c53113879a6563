// Standard LSTM / GRU / RNN layers over a whole sequence: forward and hand-written backward (rows: cells.h), one
// direction per call, with per-sequence lengths and the backward direction handled inside the loop.
//
// Why: torch has no fast CPU kernel for the GRU and the vanilla RNN (a per-step loop of ATen ops), and with
// lengths every cell goes through its packed-sequence path, which is that same loop; both cost 3-10x the unpadded
// LSTM. Here the input half (x W_ih^T + b_ih for every timestep) is one matrix product done by the caller; the loop
// keeps only the recurrent critical path: per step one small matrix product (StepLinear) and one pass per batch row.
// Lengths cost nothing extra: row b runs its steps 0..len_b-1 and then holds its state (zero output, no gradient);
// the backward direction reads time index len_b-1-s at step s, so no reversed copy of the input is ever made. The
// weight gradient is one product over all T*B rows at the end. State buffers are step-major, (T+1, B, H).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "cells.h"
#include "kernels.h"
#include "step_linear.h"
#include "workspace.h"

namespace rnnkit {
namespace {

struct Loop {
  int64_t B, T, H, GH, SV;
  const int64_t* len;  // (B,) or nullptr: every row runs T steps
  bool reverse;
  int64_t grain;  // rows per parallel chunk; B means one thread

  int64_t steps(int64_t b) const { return len != nullptr ? len[b] : T; }
  // time index of step s for row b: s forwards, len-1-s backwards; past the length, the padded position s itself
  int64_t time(int64_t s, int64_t n) const { return (reverse && s < n) ? n - 1 - s : s; }
};

template <typename S, typename Cell>
void forward_loop(const Loop& L, const S* xw, const StepLinear& lin, const S* bh, at::Tensor& hs_t, S* cs, S* sv,
                  S* out, bool save) {
  const int64_t B = L.B, T = L.T, H = L.H, GH = L.GH;
  S* hs = hs_t.data_ptr<S>();
  for (int64_t s = 0; s < T; ++s) {
    const S* hp = hs + s * B * H;
    S* hn = hs + (s + 1) * B * H;
    const S* cp = cs != nullptr ? cs + s * B * H : nullptr;
    S* cn = cs != nullptr ? cs + (s + 1) * B * H : nullptr;
    at::Tensor full;
    if (!lin.per_rows()) full = lin(hs_t.select(0, s));  // (B, GH) = h_{s-1} W_hh^T, whole batch (oneDNN)
    at::parallel_for(0, B, L.grain, [&](int64_t b0, int64_t b1) {
      std::vector<S> buf, scratch(save ? 0 : L.SV);
      const S* ap = product_rows<S>(lin, hp, H, full.defined() ? full.data_ptr<S>() : nullptr, b0, b1, buf);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t n = L.steps(b);
        S* hb = hn + b * H;
        if (s >= n) {  // past the end: zero output, state held
          std::copy(hp + b * H, hp + (b + 1) * H, hb);
          if (cs != nullptr) std::copy(cp + b * H, cp + (b + 1) * H, cn + b * H);
          std::fill(out + (b * T + s) * H, out + (b * T + s + 1) * H, S(0));
          continue;
        }
        const int64_t t = L.time(s, n);
        S* svb = save ? sv + (s * B + b) * L.SV : scratch.data();
        Cell::forward(H, xw + (b * T + t) * GH, ap + (b - b0) * GH, bh, hp + b * H,
                      cp != nullptr ? cp + b * H : nullptr, hb, cn != nullptr ? cn + b * H : nullptr, svb);
        std::copy(hb, hb + H, out + (b * T + t) * H);
      }
    });
  }
}

template <typename S, typename Cell>
void backward_loop(const Loop& L, const S* d_out, const StepLinear& lin_t, const S* hs, const S* cs, const S* sv,
                   S* dh, S* dc, at::Tensor& d_a_t, S* d_xw) {
  const int64_t B = L.B, T = L.T, H = L.H, GH = L.GH;
  constexpr bool kDirect = Cell::kGates == 3;  // the GRU's z * dh reaches h_{t-1} outside W_hh
  S* d_a = d_a_t.data_ptr<S>();
  std::vector<S> direct(kDirect ? B * H : 0);
  for (int64_t s = T - 1; s >= 0; --s) {
    auto held = [&](int64_t b) { return s >= L.steps(b); };
    at::parallel_for(0, B, L.grain, [&](int64_t b0, int64_t b1) {
      std::vector<S> buf, dht(H);
      for (int64_t b = b0; b < b1; ++b) {
        S* dab = d_a + (s * B + b) * GH;
        const int64_t n = L.steps(b);
        if (s >= n) {  // held state: no gradient to the padded input, dh and dc pass straight through
          std::fill(dab, dab + GH, S(0));
          std::fill(d_xw + (b * T + s) * GH, d_xw + (b * T + s + 1) * GH, S(0));
          continue;
        }
        const int64_t t = L.time(s, n);
        const S* dob = d_out + (b * T + t) * H;
        const S* dhb = dh + b * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dht[j] = dhb[j] + dob[j];
        Cell::backward(H, dht.data(), dc != nullptr ? dc + b * H : nullptr, hs + (s * B + b) * H,
                       cs != nullptr ? cs + (s * B + b) * H : nullptr, hs + ((s + 1) * B + b) * H,
                       sv + (s * B + b) * L.SV, d_xw + (b * T + t) * GH, dab,
                       kDirect ? direct.data() + b * H : nullptr);
      }
      if constexpr (std::is_same_v<S, float>) {
        if (lin_t.per_rows()) {  // dh_{s-1} = d_a W_hh (+ the direct part) for this block's rows
          const S* prod = product_rows<S>(lin_t, d_a + s * B * GH, GH, (const S*)nullptr, b0, b1, buf);
          for (int64_t b = b0; b < b1; ++b) {
            if (held(b)) continue;
            const S* pb = prod + (b - b0) * H;
            S* dhb = dh + b * H;
            if (kDirect) {
              const S* db = direct.data() + b * H;
#pragma omp simd
              for (int64_t j = 0; j < H; ++j) dhb[j] = pb[j] + db[j];
            } else {
              std::copy(pb, pb + H, dhb);
            }
          }
        }
      }
    });
    if (!lin_t.per_rows()) {
      const at::Tensor prod = lin_t(d_a_t.select(0, s));  // (B, H)
      const S* pp = prod.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        if (held(b)) continue;
        for (int64_t j = 0; j < H; ++j) dh[b * H + j] = pp[b * H + j] + (kDirect ? direct[b * H + j] : S(0));
      }
    }
  }
}

template <typename F>
void with_cell(int64_t mode, F&& f) {
  switch (mode) {
    case kLSTM: f(LSTMRow{}); break;
    case kGRU: f(GRURow{}); break;
    case kRNNTanh: f(RNNRow<false>{}); break;
    case kRNNReLU: f(RNNRow<true>{}); break;
    default: TORCH_CHECK(false, "recurrence: unknown mode ", mode);
  }
}

int64_t gates_of(int64_t mode) { return mode == kLSTM ? 4 : (mode == kGRU ? 3 : 1); }
int64_t saved_of(int64_t mode) { return mode == kLSTM ? 5 : (mode == kGRU ? 4 : 0); }

Loop make_loop(int64_t B, int64_t T, int64_t H, int64_t mode, const at::Tensor& lengths, bool reverse,
               int64_t parallel_macs) {
  TORCH_CHECK(lengths.numel() == 0 || (lengths.scalar_type() == at::kLong && lengths.is_contiguous() &&
                                       lengths.device().is_cpu() && lengths.numel() == B),
              "recurrence: lengths must be a contiguous CPU int64 (B,) tensor or empty");
  const int64_t GH = gates_of(mode) * H;
  const bool parallel = B > 1 && B * GH * H >= parallel_macs;
  return Loop{B, T, H, GH, saved_of(mode) * H, lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr, reverse,
              parallel ? 1 : B};
}

void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "recurrence: ", name, " must be a contiguous CPU tensor");
}

}  // namespace

namespace {

std::vector<at::Tensor> forward_one(int64_t mode, const at::Tensor& xw, const at::Tensor& h0, const at::Tensor& c0,
                                    const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& lengths,
                                    bool reverse, bool save, int64_t parallel_macs) {
  for (const auto* p : {&xw, &h0, &w_hh, &b_hh}) check(*p, "every input");
  const int64_t B = xw.size(0), T = xw.size(1), H = h0.size(1);
  const Loop L = make_loop(B, T, H, mode, lengths, reverse, parallel_macs);
  TORCH_CHECK(xw.size(2) == L.GH && w_hh.size(0) == L.GH && w_hh.size(1) == H && b_hh.numel() == L.GH,
              "recurrence: shapes of xw, w_hh, b_hh do not match the mode and hidden size");
  const bool lstm = mode == kLSTM;
  if (lstm) check(c0, "c0");
  auto opts = xw.options();
  auto hs = pooled_empty({T + 1, B, H}, opts);
  hs.select(0, 0).copy_(h0);
  at::Tensor cs, sv;
  if (lstm) {
    cs = pooled_empty({T + 1, B, H}, opts);
    cs.select(0, 0).copy_(c0);
  }
  if (save && L.SV > 0) sv = pooled_empty({T, B, L.SV}, opts);
  auto out = pooled_empty({B, T, H}, opts);
  const StepLinear lin(w_hh, B);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "recurrence_forward", [&] {
    using S = scalar_t;
    with_cell(mode, [&](auto cell) {
      using Cell = decltype(cell);
      forward_loop<S, Cell>(L, xw.data_ptr<S>(), lin, b_hh.data_ptr<S>(), hs, lstm ? cs.data_ptr<S>() : nullptr,
                            sv.defined() ? sv.data_ptr<S>() : nullptr, out.data_ptr<S>(), save);
    });
  });
  auto empty = at::empty({0}, opts);
  return {out, hs.select(0, T).clone(), lstm ? cs.select(0, T).clone() : empty, hs, lstm ? cs : empty,
          sv.defined() ? sv : empty};
}

std::vector<at::Tensor> backward_one(int64_t mode, const at::Tensor& d_out_in, const at::Tensor& dhT,
                                     const at::Tensor& dcT, const at::Tensor& hs, const at::Tensor& cs,
                                     const at::Tensor& sv, const at::Tensor& w_hh, const at::Tensor& lengths,
                                     bool reverse, int64_t parallel_macs) {
  auto d_out = d_out_in.contiguous();
  const int64_t B = d_out.size(0), T = d_out.size(1), H = d_out.size(2);
  const Loop L = make_loop(B, T, H, mode, lengths, reverse, parallel_macs);
  const bool lstm = mode == kLSTM;
  auto opts = d_out.options();
  auto dh = dhT.contiguous().clone();
  auto dc = lstm ? dcT.contiguous().clone() : at::empty({0}, opts);
  auto d_a = pooled_empty({T, B, L.GH}, opts), d_xw = pooled_empty({B, T, L.GH}, opts);
  const StepLinear lin_t(w_hh.t().contiguous(), B);
  AT_DISPATCH_FLOATING_TYPES(d_out.scalar_type(), "recurrence_backward", [&] {
    using S = scalar_t;
    with_cell(mode, [&](auto cell) {
      using Cell = decltype(cell);
      backward_loop<S, Cell>(L, d_out.data_ptr<S>(), lin_t, hs.data_ptr<S>(), lstm ? cs.data_ptr<S>() : nullptr,
                             sv.numel() ? sv.data_ptr<S>() : nullptr, dh.data_ptr<S>(),
                             lstm ? dc.data_ptr<S>() : nullptr, d_a, d_xw.data_ptr<S>());
    });
  });
  auto flat = d_a.view({T * B, L.GH});
  auto d_w = matmul_tn(flat, hs.narrow(0, 0, T).reshape({T * B, H}));
  return {d_xw, dh, dc, d_w, flat.sum(0)};
}

// Runs n independent directions, concurrently when there are threads for them: one thread per direction for the
// whole sequence costs no synchronisation per step (each direction's own row split then runs inline).
template <typename F>
std::vector<at::Tensor> each_direction(int64_t n, int64_t per, F&& one) {
  std::vector<std::vector<at::Tensor>> results(n);
  at::parallel_for(0, n, 1, [&](int64_t d0, int64_t d1) {
    for (int64_t d = d0; d < d1; ++d) results[d] = one(d);
  });
  std::vector<at::Tensor> flat;
  for (auto& r : results) {
    TORCH_CHECK(static_cast<int64_t>(r.size()) == per, "recurrence: internal error");
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return flat;
}

}  // namespace

std::vector<at::Tensor> recurrence_forward(int64_t mode, const std::vector<at::Tensor>& xw,
                                           const std::vector<at::Tensor>& h0, const std::vector<at::Tensor>& c0,
                                           const std::vector<at::Tensor>& w_hh, const std::vector<at::Tensor>& b_hh,
                                           const at::Tensor& lengths, const std::vector<bool>& reverse, bool save,
                                           int64_t parallel_macs) {
  const int64_t n = static_cast<int64_t>(xw.size());
  TORCH_CHECK(h0.size() == xw.size() && c0.size() == xw.size() && w_hh.size() == xw.size() &&
                  b_hh.size() == xw.size() && reverse.size() == xw.size(),
              "recurrence: one entry per direction in every list");
  return each_direction(n, 6, [&](int64_t d) {
    return forward_one(mode, xw[d], h0[d], c0[d], w_hh[d], b_hh[d], lengths, reverse[d], save, parallel_macs);
  });
}

std::vector<at::Tensor> recurrence_backward(int64_t mode, const std::vector<at::Tensor>& d_out,
                                            const std::vector<at::Tensor>& dhT, const std::vector<at::Tensor>& dcT,
                                            const std::vector<at::Tensor>& hs, const std::vector<at::Tensor>& cs,
                                            const std::vector<at::Tensor>& sv, const std::vector<at::Tensor>& w_hh,
                                            const at::Tensor& lengths, const std::vector<bool>& reverse,
                                            int64_t parallel_macs) {
  const int64_t n = static_cast<int64_t>(d_out.size());
  return each_direction(n, 5, [&](int64_t d) {
    return backward_one(mode, d_out[d], dhT[d], dcT[d], hs[d], cs[d], sv[d], w_hh[d], lengths, reverse[d],
                        parallel_macs);
  });
}

}  // namespace rnnkit
