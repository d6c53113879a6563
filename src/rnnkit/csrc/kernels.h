// Declarations of rnnkit's CPU kernels (bound to Python in bindings.cpp).
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace rnnkit {

std::vector<at::Tensor> lnlstm_forward(const at::Tensor& u, const at::Tensor& h0, const at::Tensor& c0,
                                       const at::Tensor& w_hh, const at::Tensor& g_hh, const at::Tensor& lw,
                                       const at::Tensor& lb, const at::Tensor& mask, double eps, bool save);

std::vector<at::Tensor> lnlstm_backward(const at::Tensor& d_out, const at::Tensor& dhT, const at::Tensor& dcT,
                                        const at::Tensor& hs, const at::Tensor& cs, const at::Tensor& ns,
                                        const at::Tensor& rs, const at::Tensor& acts, const at::Tensor& ms,
                                        const at::Tensor& rcs, const at::Tensor& taus, const at::Tensor& w_hh,
                                        const at::Tensor& g_hh, const at::Tensor& lw, const at::Tensor& mask);

at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b, const at::Tensor& h0);

std::vector<at::Tensor> linear_scan_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& h,
                                             const at::Tensor& h0);

}  // namespace rnnkit
