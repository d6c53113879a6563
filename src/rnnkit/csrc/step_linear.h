// Matrix products for the recurrent kernels, through oneDNN where it is faster.
// On the CPUs we measured (AMD EPYC), at::mm (MKL sgemm) runs these shapes at a third to a half of oneDNN's speed:
// StepLinear packs the recurrent weight once per sequence and reuses it every timestep (2-4x faster than at::mm
// from B*in*out of about a million up; below that the call overhead wins and at::mm is used), and matmul_tn does
// the all-timesteps weight gradient. float64, or a torch without oneDNN, always uses at::mm.
#pragma once
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

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
  if (a.scalar_type() == at::kFloat && a.size(0) * a.size(1) * b.size(1) >= (1 << 20)) {
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
  StepLinear(const at::Tensor& w, int64_t batch) {
    if (w.scalar_type() == at::kFloat && batch * w.size(0) * w.size(1) >= (1 << 20)) {
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
  }

  at::Tensor operator()(const at::Tensor& x) const {
    return packed_.defined() ? onednn_linear(*linear_, x, packed_) : at::mm(x, wt_);
  }

 private:
  at::Tensor packed_, wt_;
  std::optional<c10::OperatorHandle> linear_;
};

}  // namespace rnnkit
