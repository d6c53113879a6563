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
                                       const at::Tensor& mask, double eps, bool save);

// Returns [d_xw (B, T, 4H), dh0, dc0, dW_hh, dg_ih, db_ih, dg_hh, d_ln_c_weight, d_ln_c_bias].
std::vector<at::Tensor> lnlstm_backward(const at::Tensor& d_out, const at::Tensor& dhT, const at::Tensor& dcT,
                                        const at::Tensor& xw, const std::vector<at::Tensor>& saved,
                                        const at::Tensor& w_hh, const at::Tensor& g_ih, const at::Tensor& g_hh,
                                        const at::Tensor& lw, const at::Tensor& mask);

at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0);

std::vector<at::Tensor> linear_scan_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& h,
                                             const at::Tensor& h0);

}  // namespace rnnkit
