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

Which exporter, and why (measured with torch 2.13.0 and onnxruntime 1.32 by ``benchmarks/export.py``, which records
it in ``benchmarks/results/export-*.json``; each graph traced at T=5, then run at T=1000):

* The TorchScript-based exporter (``dynamo=False``) turns ``torch.nn.LSTM/GRU/RNN`` into ONNX's ``LSTM``/``GRU``/
  ``RNN`` nodes with a dynamic time axis, the initial state as an input and ``linear_before_reset=1`` on GRUs
  (error 1e-7 to 3e-7). But it warns that it is deprecated and will be removed, and it unrolls any Python loop over
  time into a fixed-length graph, so the layer-norm LSTM, minGRU and minLSTM would need TorchScript-scripted loops.
* The dynamo-based exporter (``dynamo=True``) on the same layers: ``nn.RNN`` fails to export; ``nn.LSTM`` and
  ``nn.GRU`` export, but torch.export specialises the sequence length, so the graph declares the example's length
  in its output shape (``[batch, 5, 16]``): onnxruntime still runs other lengths (with a warning), tools that trust
  the declared shapes do not. It does export ``torch.scan`` as an ONNX ``Scan`` with a dynamic length, and lets a
  module emit any ONNX node (``torch.onnx.ops.symbolic``).

So rnnkit pins the dynamo-based exporter (``torch.onnx.export(dynamo=True)``, opset 18) and writes the time loop
itself (:mod:`rnnkit.export.recurrent`): standard cells become ONNX's own ``LSTM``/``GRU``/``RNN`` nodes (weights
permuted to ONNX's gate order, ``linear_before_reset=1``, ``lengths`` as ``sequence_lens``); every other cell
becomes a ``Scan`` over its own ``recur``. All declare ``[batch, time, ...]``. Over a sequence (batch 32, 200 steps,
H=128) onnxruntime ran the ``LSTM`` node 1.46x and the ``GRU`` node 1.23x faster than a ``Scan`` of the same cell,
but the ``RNN`` node 0.45x as fast (the ``Scan`` of a tanh RNN is 2.2x faster); one step costs the same either way
(0.9-1.1x). (``native_vs_scan`` in the benchmark's record.)
"""

from __future__ import annotations

from .exporter import ExportConfig, ExportResult, export_onnx
from .predictor import OnnxPredictor
from .verify import VerificationError

__all__ = ["ExportConfig", "ExportResult", "OnnxPredictor", "VerificationError", "export_onnx"]
