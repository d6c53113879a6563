// Python bindings of rnnkit's CPU kernels; loaded by rnnkit/_ext.py.
#include <torch/extension.h>

#include "kernels.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lnlstm_forward", &rnnkit::lnlstm_forward, "layer-norm LSTM over a sequence: forward");
  m.def("lnlstm_backward", &rnnkit::lnlstm_backward, "layer-norm LSTM over a sequence: backward");
  m.def("linear_scan_forward", &rnnkit::linear_scan_forward, "h_t = a_t h_{t-1} + b_t: forward");
  m.def("linear_scan_backward", &rnnkit::linear_scan_backward, "h_t = a_t h_{t-1} + b_t: backward");
  m.def("minrnn_forward", &rnnkit::minrnn_forward, "minGRU/minLSTM over a sequence: forward");
  m.def("minrnn_backward", &rnnkit::minrnn_backward, "minGRU/minLSTM over a sequence: backward");
  m.def("recurrence_forward", &rnnkit::recurrence_forward, "LSTM/GRU/RNN over a sequence, one direction: forward");
  m.def("recurrence_backward", &rnnkit::recurrence_backward, "LSTM/GRU/RNN over a sequence: backward");
}
