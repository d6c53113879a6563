"""onnxruntime against PyTorch on the exported graphs, and the measurement behind the choice of exporter.

    flock /tmp/rnnkit-bench.lock .venv/bin/python benchmarks/export.py           # ~3 minutes on 2 cores
    flock /tmp/rnnkit-bench.lock .venv/bin/python benchmarks/export.py --quick   # fewer repeats

1. Latency, per cell (LSTM, GRU, minGRU; one layer, F=32, H=128): a step at batch 1 (``step.onnx`` against
   ``Recurrent.step``: what a stream or a device runs) and a sequence at batch 32, T=200 with random lengths
   (``sequence.onnx`` against ``Recurrent.forward``, the fused or C++ path). Both sides run on one thread, timed
   round-robin in blocks of calls; ``speedup`` = time(PyTorch) / time(onnxruntime), the median over rounds, so > 1
   means onnxruntime is faster. Every export is verified first (verify.json), so the graphs timed are correct.
2. Native nodes against a ``Scan`` (RNN, LSTM, GRU; same sizes and cases): the same layer written both ways
   (``RecurrentGraph(layer, native=False)`` scans the cell's own ``recur``; its step graph is the cell's equations
   as plain ONNX ops), both in onnxruntime, timed as above; ``native_speedup`` = time(Scan) / time(native node).
   The two graphs' outputs are compared first.
3. Exporters (torch 2.13): ``torch.nn.LSTM/GRU/RNN`` through the TorchScript-based exporter (``dynamo=False``) and
   the dynamo-based one (``dynamo=True``): does it export, does the graph accept another sequence length than the
   example's, the ``linear_before_reset`` of a GRU node, the largest error at T=1000. And rnnkit's own export of the
   same layers (native nodes, ``Scan`` for the other cells) on the same questions.

Writes ``benchmarks/results/export-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from rnnkit import Recurrent
from rnnkit.export import export_onnx
from rnnkit.export.graph import GraphSpec, IOSpec, export_graph
from rnnkit.export.plans import state_specs
from rnnkit.export.recurrent import RecurrentGraph

F, H = 32, 128


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rounds(fns: dict[str, Callable[[], object]], repeats: int, block: int) -> dict[str, list[float]]:
    """Seconds per call, in blocks of ``block`` calls, round-robin with the order flipped every round."""
    for fn in fns.values():
        for _ in range(block):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            for _ in range(block):
                fns[name]()
            times[name].append((time.perf_counter() - start) / block)
    return times


def latency(cell: str, repeats: int, tmp: Path) -> list[dict[str, object]]:
    torch.manual_seed(0)
    layer = Recurrent(cell, F, H).eval()
    result = export_onnx(layer, tmp / cell)
    step, seq = session(result.directory / "step.onnx"), session(result.directory / "sequence.onnx")
    names = ("h", "c")[: layer.num_states]
    rows = []
    # a step at batch 1
    x1 = torch.randn(1, F)
    s1 = layer.initial_state(1)
    feeds1 = {"x": x1.numpy(), **{n: s.numpy() for n, s in zip(names, s1)}}
    with torch.no_grad():
        t = rounds({"onnxruntime": lambda: step.run(None, feeds1), "pytorch": lambda: layer.step(x1, s1)}, repeats, 200)
    rows.append(summary(cell, "step, B=1", t))
    # a sequence at batch 32
    B, T = 32, 200
    x = torch.randn(B, T, F)
    lengths = torch.randint(T // 2, T + 1, (B,))
    lengths[0] = T
    s0 = layer.initial_state(B)
    feeds = {"x": x.numpy(), "lengths": lengths.numpy(), **{n: s.numpy() for n, s in zip(names, s0)}}
    with torch.no_grad():
        t = rounds({"onnxruntime": lambda: seq.run(None, feeds), "pytorch": lambda: layer(x, s0, lengths)}, repeats, 3)
    rows.append(summary(cell, "sequence, B=32, T=200, lengths", t))
    rows[-1]["verify_max_abs_error"] = result.report["max_abs_error"]
    return rows


def summary(cell: str, what: str, t: dict[str, list[float]]) -> dict[str, object]:
    ratio = statistics.median(p / o for p, o in zip(t["pytorch"], t["onnxruntime"]))
    return {
        "cell": cell,
        "case": what,
        "onnxruntime_ms": statistics.median(t["onnxruntime"]) * 1e3,
        "pytorch_ms": statistics.median(t["pytorch"]) * 1e3,
        "speedup": ratio,
    }


class _Sequence(nn.Module):
    def __init__(self, layer: Recurrent, native: bool) -> None:
        super().__init__()
        self.rnn = RecurrentGraph(layer, native)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.rnn(inputs[0], tuple(inputs[2:]), inputs[1])
        return (y, *new)


class _Step(nn.Module):
    def __init__(self, layer: Recurrent, native: bool) -> None:
        super().__init__()
        self.rnn = RecurrentGraph(layer, native)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.rnn.step(inputs[0], tuple(inputs[1:]))
        return (y, *new)


def native_vs_scan(cell: str, repeats: int, tmp: Path) -> list[dict[str, object]]:
    """The same layer as ONNX's own operator and as a Scan of its cell's equations, both in onnxruntime."""
    torch.manual_seed(0)
    layer = Recurrent(cell, F, H).eval()
    names = ["h", "c"][: layer.num_states]
    seq_io = [IOSpec("x", ("batch", "time", F)), IOSpec("lengths", ("batch",), "lengths"), *state_specs(layer)]
    step_io = [IOSpec("x", ("batch", F)), *state_specs(layer)]
    outs = [IOSpec("y", ("batch", "time", H)), *state_specs(layer, "_out")]
    sessions = {}
    for native in (True, False):
        kind = "native" if native else "scan"
        for name, module, ins in (("sequence", _Sequence, seq_io), ("step", _Step, step_io)):
            path = tmp / f"{cell}-{kind}-{name}.onnx"
            export_graph(GraphSpec(name, module(layer, native), ins, outs), path)
            ops = {n.op_type for n in onnx.load(str(path)).graph.node}
            assert bool(ops & {"RNN", "LSTM", "GRU"}) == native, (cell, kind, name, ops)  # a step scans nothing
            sessions[kind, name] = session(path)
    B, T = 32, 200
    x = torch.randn(B, T, F)
    lengths = torch.randint(T // 2, T + 1, (B,))
    lengths[0] = T
    state = {n: s.numpy() for n, s in zip(names, layer.initial_state(B))}
    seq = {"x": x.numpy(), "lengths": lengths.numpy(), **state}
    step = {"x": x[:1, 0].numpy(), **{n: v[:, :1] for n, v in state.items()}}
    rows = []
    for name, feeds, case, block in (("step", step, "step, B=1", 200), ("sequence", seq, "sequence, B=32, T=200", 3)):
        native, scan = sessions["native", name], sessions["scan", name]
        err = max(float(np.abs(a - b).max()) for a, b in zip(native.run(None, feeds), scan.run(None, feeds)))
        calls = {k: (lambda s=sess, f=feeds: s.run(None, f)) for k, sess in (("native", native), ("scan", scan))}
        t = rounds(calls, repeats, block)
        rows.append(
            {
                "cell": cell,
                "case": case,
                "native_ms": statistics.median(t["native"]) * 1e3,
                "scan_ms": statistics.median(t["scan"]) * 1e3,
                "native_speedup": statistics.median(s / n for s, n in zip(t["scan"], t["native"])),
                "max_abs_difference": err,
            }
        )
    return rows


class _Wrap(nn.Module):
    def __init__(self, module: nn.RNNBase) -> None:
        super().__init__()
        self.m = module

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, s = self.m(x, tuple(state) if len(state) == 2 else state[0])
        return (y, *(s if isinstance(s, tuple) else (s,)))


def exporters(tmp: Path) -> list[dict[str, object]]:
    """The two torch exporters on torch.nn layers, and rnnkit's export, on the same questions."""
    rows = []
    for kind, cls in (("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn_tanh", nn.RNN)):
        torch.manual_seed(0)
        module = cls(8, 16, num_layers=2, batch_first=True).eval()
        n = 2 if kind == "lstm" else 1
        x, st = torch.randn(3, 5, 8), [torch.randn(2, 3, 16) for _ in range(n)]
        names = ["x", "h", "c"][: 1 + n]
        for dynamo in (False, True):
            path = tmp / f"{kind}-{dynamo}.onnx"
            row: dict[str, object] = {
                "layer": f"torch.nn.{cls.__name__}",
                "exporter": "dynamo" if dynamo else "torchscript",
            }
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if dynamo:
                        d = torch.export.Dim.DYNAMIC
                        shapes = ({0: d, 1: d}, tuple({1: d} for _ in range(n)))
                        torch.onnx.export(
                            _Wrap(module),
                            (x, *st),
                            input_names=names,
                            dynamo=True,
                            dynamic_shapes=shapes,
                            verbose=False,
                        ).save(str(path))
                    else:
                        axes = {"x": {0: "B", 1: "T"}, **{k: {1: "B"} for k in names[1:]}}
                        torch.onnx.export(
                            _Wrap(module),
                            (x, *st),
                            str(path),
                            input_names=names,
                            dynamo=False,
                            dynamic_axes=axes,
                            opset_version=17,
                        )
                row |= probe(path, _Wrap(module), names, n)
            except Exception as exc:  # an exporter that fails is the finding
                row |= {"exports": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
            rows.append(row)
        layer = Recurrent.from_torch(module).eval()
        res = export_onnx(layer, tmp / f"rnnkit-{kind}")
        row = {"layer": f"rnnkit Recurrent({kind})", "exporter": "rnnkit (dynamo + native nodes)"}
        rows.append(row | probe(res.directory / "sequence.onnx", layer, ["x", "lengths", *names[1:]], n, lengths=True))
    for cell in ("layernorm_lstm", "mingru", "minlstm"):
        torch.manual_seed(0)
        layer = Recurrent(cell, 8, 16, num_layers=2).eval()
        res = export_onnx(layer, tmp / f"rnnkit-{cell}")
        row = {"layer": f"rnnkit Recurrent({cell})", "exporter": "rnnkit (dynamo + Scan)"}
        names = ["x", "lengths", "h", "c"][: 3 + layer.num_states - 1]
        rows.append(row | probe(res.directory / "sequence.onnx", layer, names, layer.num_states, lengths=True))
    return rows


def probe(path: Path, module: nn.Module, names: list[str], n: int, lengths: bool = False) -> dict[str, object]:
    """Runs at T=1000 (the example had 5 or 7), GRU attributes, ops, the error against PyTorch."""
    model = onnx.load(str(path))
    ops = sorted({node.op_type for node in model.graph.node})
    lbr = [
        onnx.helper.get_attribute_value(a)
        for node in model.graph.node
        if node.op_type == "GRU"
        for a in node.attribute
        if a.name == "linear_before_reset"
    ]
    x, st = torch.randn(2, 1000, 8), [torch.randn(2, 2, 16) for _ in range(n)]
    feeds = {"x": x.numpy(), **{k: s.numpy() for k, s in zip(names[-n:], st)}}
    if lengths:
        feeds["lengths"] = np.array([1000, 1000])
    try:
        got = session(path).run(None, feeds)
    except Exception as exc:
        return {"exports": True, "ops": ops, "other_lengths": False, "error": str(exc).splitlines()[0][:160]}
    with torch.no_grad():
        want = module(x, tuple(st)) if lengths else module(x, *st)
    want = [want[0], *want[1]] if lengths else list(want)
    err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    out_dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    return {
        "exports": True,
        "ops": ops,
        "other_lengths": True,
        "declared_output_shape": out_dims,
        "gru_linear_before_reset": lbr or None,
        "max_abs_error_T1000": err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 5 if args.quick else 21
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for cell in ("lstm", "gru", "mingru") for r in latency(cell, repeats, Path(tmp))]
        versus = [r for cell in ("rnn_tanh", "lstm", "gru") for r in native_vs_scan(cell, repeats, Path(tmp))]
        found = exporters(Path(tmp))
    print(f"\nonnxruntime {ort.__version__} vs torch {torch.__version__}, one thread each (speedup > 1: ORT faster)")
    for r in rows:
        print(
            f"  {r['cell']:<7} {r['case']:<32} ORT {r['onnxruntime_ms']:8.3f} ms  torch {r['pytorch_ms']:8.3f} ms"
            f"  speedup {r['speedup']:.2f}x"
        )
    print("\nnative ONNX node vs Scan of the same cell, both onnxruntime (native_speedup > 1: the node is faster)")
    for r in versus:
        print(
            f"  {r['cell']:<8} {r['case']:<24} native {r['native_ms']:8.3f} ms  Scan {r['scan_ms']:8.3f} ms"
            f"  native_speedup {r['native_speedup']:.2f}x  (outputs differ by {r['max_abs_difference']:.1e})"
        )
    print("\nexporters (T=1000 after tracing at T=5/7)")
    for r in found:
        state = "ok" if r.get("other_lengths") else f"FAILS: {r.get('error', '')[:90]}"
        extra = f" lbr={r['gru_linear_before_reset']}" if r.get("gru_linear_before_reset") else ""
        err = f" err={r['max_abs_error_T1000']:.1e}" if "max_abs_error_T1000" in r else ""
        shape = f" declared y {r['declared_output_shape']}" if "declared_output_shape" in r else ""
        print(f"  {r['layer']:<32} {r['exporter']:<30} {state}{shape}{extra}{err}")
    record = {
        "date": date.today().isoformat(),
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "threads": 1,
        "latency": rows,
        "native_vs_scan": versus,
        "exporters": found,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"export-{record['date']}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
