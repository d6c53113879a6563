"""``README.txt`` of an export directory: every graph's inputs, outputs and shapes, the state layout, how to run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plans import Plan

USAGE = """How to run (Python, in this directory; any onnxruntime binding works the same way):

    import numpy as np, onnxruntime as ort
    step = ort.InferenceSession("{graph}")
    feeds = {{...}}                       # every input above, dtype as listed
    outputs = step.run(None, feeds)      # in the order listed above

A stream keeps the state between calls: feed h_out (and c_out) back as h (and c) at the next step; start a new
sequence from zeros. Token ids, labels, tags and the scaler are in config.json (artifacts); rnnkit's own
OnnxPredictor (rnnkit.export.OnnxPredictor(this directory)) does the pre- and post-processing of the task
around these graphs.
"""


def state_layout(plan: Plan) -> list[str]:
    lines = []
    for name, layer in _layers(plan):
        L, D, H = layer.num_layers, layer.num_directions, layer.hidden_size
        kinds = "(h, c): h the hidden state, c the LSTM cell state" if layer.num_states == 2 else "(h,)"
        lines.append(
            f"{name}: cell {layer.cell_kind}, {L} layer(s), {'bidirectional' if D == 2 else 'unidirectional'}, "
            f"hidden size {H}. State {kinds}, each (L*D, batch, H) = ({L * D}, batch, {H}); index k*D + d is layer "
            f"k (0 = bottom), direction d (0 forward, 1 backward), as in torch.nn."
        )
    return lines


def _layers(plan: Plan) -> list[tuple[str, Any]]:
    model = plan.task.model
    if plan.task.name == "translate":
        return [("encoder", model.encoder), ("decoder", model.decoder)]
    if plan.task.name == "recurrent":
        return [("recurrent layer", model)]
    return [("recurrent layer", getattr(model, "net", model).rnn)]


def write_readme(path: Path, plan: Plan, report: dict[str, Any], skipped: list[str]) -> None:
    task = plan.task
    out = [
        f"rnnkit ONNX export of a {task.name!r} model (opset {report['opset']}, rnnkit {report['rnnkit']}, "
        f"torch {report['torch']}).",
        "",
        "Every graph has a dynamic batch axis; sequence graphs also a dynamic time (or source) axis. Float inputs and",
        "outputs are float32; token ids and lengths int64; masks bool. Lengths must be in 1..time (right padding).",
        "",
        "State layout",
        "------------",
        *state_layout(plan),
        "",
    ]
    for spec in plan.graphs:
        out += [spec.file, "-" * len(spec.file), spec.doc, "inputs:"]
        out += ["  " + io.describe() for io in spec.inputs]
        out += ["outputs:"] + ["  " + io.describe() for io in spec.outputs]
        out += [*spec.notes, ""]
    if skipped:
        out += ["Not exported", "------------", *skipped, ""]
    if plan.notes:
        out += ["Other files", "-----------", *plan.notes, ""]
    out += [
        "Verification",
        "------------",
        f"verify.json: onnxruntime against PyTorch at batch sizes {report['batch_sizes']} and lengths "
        f"{report['lengths']}; criterion: {report['criterion']}.",
        report["summary"],
        "Largest absolute error per graph and output:",
    ]
    for graph, errors in report["max_abs_error"].items():
        out.append(f"  {graph}: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
    out += ["", USAGE.format(graph=plan.graphs[-1].file)]
    path.write_text("\n".join(out))
