"""ONNX export with the hidden state as input and output, verified in onnxruntime.

``rnnkit export RUN --format onnx --out DIR`` (or :func:`export_onnx`) writes, for a trained task:

* ``step.onnx``: one timestep, ``(x_t, h[, c]) -> (y_t, h_out[, c_out])``, dynamic batch: what a stream, a device
  or a server runs (not for a bidirectional layer, whose backward direction starts at the end);
* ``sequence.onnx``: the whole sequence with dynamic batch and time, and ``lengths`` where the model takes them;
* ``head.onnx`` for many-to-one models (the step graph's pooled outputs to the task's output);
* translation: ``encoder.onnx`` and ``decoder_step.onnx`` (attention inside), so beam search runs outside PyTorch;
* ``config.json`` (vocabularies, labels, scaler), ``crf.json`` (a CRF's transitions), ``verify.json`` (onnxruntime
  against PyTorch, see :mod:`rnnkit.export.verify`) and ``README.txt`` (inputs, outputs, shapes, state layout).

:class:`OnnxPredictor` runs a task's ``predict`` (forecasts, labels, tags, translations, generated text) with every
neural computation in onnxruntime.

Which exporter, and why (measured with torch 2.13.0 and onnxruntime 1.32; ``benchmarks/export.py --exporters``
repeats the measurement):

* The TorchScript-based exporter (``dynamo=False``) turns ``torch.nn.LSTM/GRU/RNN`` into ONNX's ``LSTM``/``GRU``/
  ``RNN`` nodes with a dynamic time axis, the initial state as an input and ``linear_before_reset=1`` on GRUs;
  parity ~2e-7. But it is deprecated (it warns that it will be removed), it unrolls any Python loop over time into
  a fixed-length graph, so the layer-norm LSTM, minGRU and minLSTM would need TorchScript-scripted loops, and packed
  sequences (how rnnkit runs ``lengths``) do not export.
* The dynamo-based exporter (``dynamo=True``) fails on ``nn.LSTM`` with a dynamic time axis (torch.export
  specialises the sequence length), bakes the example length into ``nn.GRU``'s output shapes and into ``nn.RNN``'s
  input, so the graph rejects any other length. It does, however, export ``torch.scan`` as an ONNX ``Scan`` with
  a dynamic length (parity ~2e-7), and lets a module emit any ONNX node (``torch.onnx.ops.symbolic``).

So rnnkit pins the dynamo-based exporter (``torch.onnx.export(dynamo=True)``, opset 18) and writes the time loop
itself (:mod:`rnnkit.export.recurrent`): standard cells become ONNX's own ``LSTM``/``GRU``/``RNN`` nodes (weights
permuted to ONNX's gate order, ``linear_before_reset=1``, ``lengths`` as ``sequence_lens``), which onnxruntime runs
1.4-4x faster than a ``Scan`` of the same cell; every other cell becomes a ``Scan`` over its own ``recur``.
"""

from __future__ import annotations

from .exporter import ExportConfig, ExportResult, export_onnx
from .predictor import OnnxPredictor
from .verify import VerificationError

__all__ = ["ExportConfig", "ExportResult", "OnnxPredictor", "VerificationError", "export_onnx"]
