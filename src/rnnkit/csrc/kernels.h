// Declarations of rnnkit's CPU kernels (bound to Python in bindings.cpp).
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace rnnkit {

// Layer-norm LSTM over a sequence. xw = x W_ih^T (B, T, 4H); states (B, H); mask (T, B) or empty.
// Returns [out (B, T, H), h_T, c_T, then the saved activations handed back to lnlstm_backward].
std::vector<at::Tensor> lnlstm_forward(const at::Tensor& xw, const at::Tensor& h0, const at::Tensor& c0,
                                       const at::Tensor& w_hh, const at::Tensor& g_ih, const at::Tensor& b_ih,
                                       const at::Tensor& g_hh, const at::Tensor& lw, const at::Tensor& lb,
                                       const at::Tensor& mask, double eps, bool save, int64_t parallel_macs);

// Returns [d_xw (B, T, 4H), dh0, dc0, dW_hh, dg_ih, db_ih, dg_hh, d_ln_c_weight, d_ln_c_bias].
std::vector<at::Tensor> lnlstm_backward(const at::Tensor& d_out, const at::Tensor& dhT, const at::Tensor& dcT,
                                        const at::Tensor& xw, const std::vector<at::Tensor>& saved,
                                        const at::Tensor& w_hh, const at::Tensor& g_ih, const at::Tensor& g_hh,
                                        const at::Tensor& lw, const at::Tensor& mask, int64_t parallel_macs);

at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0);

std::vector<at::Tensor> linear_scan_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& h,
                                             const at::Tensor& h0);

// minGRU (lstm false: u = k_z, k_h) or minLSTM (u = k_f, k_i, k_h) over a sequence: u (B, T, G*H), h0 (B, H),
// lengths (B,) int64 or empty. Returns [out (B, T, H), h_T].
std::vector<at::Tensor> minrnn_forward(const at::Tensor& u, const at::Tensor& h0, const at::Tensor& lengths,
                                       bool lstm);

// Returns [d_u (B, T, G*H), dh0].
std::vector<at::Tensor> minrnn_backward(const at::Tensor& d_out, const at::Tensor& dhT, const at::Tensor& u,
                                        const at::Tensor& out, const at::Tensor& h0, const at::Tensor& lengths,
                                        bool lstm);

// Standard LSTM (mode 0), GRU (1), tanh RNN (2), ReLU RNN (3) over a sequence, for n independent directions (run
// concurrently when threads allow). Per direction d: xw = x W_ih^T + b_ih (B, T, G*H); h0, c0 (B, H) (c0 empty
// unless LSTM); w_hh (G*H, H); b_hh (G*H); reverse[d]: read each sequence backwards within its length. lengths (B,)
// int64 or empty, shared. A step whose product (B x G*H x H) reaches parallel_macs splits its rows over threads.
// Returns, per direction, [out (B, T, H), h_T, c_T, then the saved hs, cs, acts for the backward].
std::vector<at::Tensor> recurrence_forward(int64_t mode, const std::vector<at::Tensor>& xw,
                                           const std::vector<at::Tensor>& h0, const std::vector<at::Tensor>& c0,
                                           const std::vector<at::Tensor>& w_hh, const std::vector<at::Tensor>& b_hh,
                                           const at::Tensor& lengths, const std::vector<bool>& reverse, bool save,
                                           int64_t parallel_macs);

// Returns, per direction, [d_xw (B, T, G*H), dh0, dc0 (empty unless LSTM), dW_hh, db_hh].
std::vector<at::Tensor> recurrence_backward(int64_t mode, const std::vector<at::Tensor>& d_out,
                                            const std::vector<at::Tensor>& dhT, const std::vector<at::Tensor>& dcT,
                                            const std::vector<at::Tensor>& hs, const std::vector<at::Tensor>& cs,
                                            const std::vector<at::Tensor>& sv, const std::vector<at::Tensor>& w_hh,
                                            const at::Tensor& lengths, const std::vector<bool>& reverse,
                                            int64_t parallel_macs);

}  // namespace rnnkit
