// Matrix products for the recurrent kernels, through whatever is fastest for the shape.
// On the CPUs we measured (AMD EPYC), at::mm (MKL sgemm) runs these shapes at a third to a half of oneDNN's speed,
// and for small ones (B*in*out under a million) both spend more time in call overhead than in arithmetic.
// StepLinear therefore packs the recurrent weight once per sequence for oneDNN on large shapes, and on small ones
// runs a register-blocked loop of its own on whatever block of rows a thread is already working on (rows()).
// matmul_tn does the all-timesteps weight gradient. float64, or a torch without oneDNN, uses at::mm.
#pragma once
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "small_gemm.h"

namespace rnnkit {

inline std::optional<c10::OperatorHandle> onednn_op(const char* name) {
  return c10::Dispatcher::singleton().findOp(c10::OperatorName(name, ""));
}

// x (B, in) @ w^T with w (out, in) given dense or packed; the boxed call avoids depending on the C++ signature.
inline at::Tensor onednn_linear(const c10::OperatorHandle& op, const at::Tensor& x, const at::Tensor& w) {
  std::vector<c10::IValue> stack{x, w, c10::IValue(), c10::IValue(std::string("none")),
                                 c10::IValue(c10::List<std::optional<at::Scalar>>()), c10::IValue()};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// a^T @ b for a (N, M), b (N, K): the weight gradient summed over all N = T*B rows.
inline at::Tensor matmul_tn(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() == at::kFloat && a.size(0) * a.size(1) * b.size(1) >= (int64_t(1) << 27)) {
    if (auto op = onednn_op("mkldnn::_linear_pointwise")) {
      try {
        return onednn_linear(*op, a.t().contiguous(), b.t().contiguous());
      } catch (const std::exception&) {  // fall through to at::mm
      }
    }
  }
  return at::mm(a.t(), b);
}

class StepLinear {
 public:
  // w: (out, in); batch: rows of every x it will see.
  StepLinear(const at::Tensor& w, int64_t batch) : in_(w.size(1)), out_(w.size(0)) {
    const bool big = batch * w.size(0) * w.size(1) >= (1 << 20);
    if (w.scalar_type() == at::kFloat && big) {
      auto reorder = onednn_op("mkldnn::_reorder_linear_weight");
      auto linear = onednn_op("mkldnn::_linear_pointwise");
      if (reorder && linear) {
        try {
          std::vector<c10::IValue> stack{w.contiguous(), c10::IValue(batch)};
          reorder->callBoxed(&stack);
          packed_ = stack[0].toTensor();
          linear_ = *linear;
          return;
        } catch (const std::exception&) {  // fall through to at::mm
        }
      }
    }
    wt_ = w.t().contiguous();
    per_rows_ = w.scalar_type() == at::kFloat && !big;
  }

  // True: callers compute their own row blocks with rows() (inside their parallel loop); false: call operator().
  bool per_rows() const { return per_rows_; }
  int64_t out_features() const { return out_; }

  // out (n, out) = x (n, in) @ w^T for a block of n contiguous rows (small float shapes only).
  void rows(const float* x, int64_t n, float* out) const { small_gemm(x, wt_.data_ptr<float>(), out, n, in_, out_); }

  // The whole batch: x (B, in) -> (B, out).
  at::Tensor operator()(const at::Tensor& x) const {
    return packed_.defined() ? onednn_linear(*linear_, x, packed_) : at::mm(x, wt_);
  }

 private:
  int64_t in_, out_;
  at::Tensor packed_, wt_;
  bool per_rows_ = false;
  std::optional<c10::OperatorHandle> linear_;
};

// A matrix product for rows [b0, b1) of x (B, in), returned as a pointer to row b0: computed here when StepLinear
// works per row block, else read from the whole-batch product `full` computed before the parallel loop.
template <typename S>
const S* product_rows(const StepLinear& lin, const S* x, int64_t in, const S* full, int64_t b0, int64_t b1,
                      std::vector<S>& buf) {
  const int64_t out = lin.out_features();
  if constexpr (std::is_same_v<S, float>) {
    if (lin.per_rows()) {
      buf.resize((b1 - b0) * out);
      lin.rows(x + b0 * in, b1 - b0, buf.data());
      return buf.data();
    }
  }
  return full + b0 * out;
}

}  // namespace rnnkit
