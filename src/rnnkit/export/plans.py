"""What each task exports: its graphs, the PyTorch calls they must equal, real inputs, and the composite check.

A plan names, for one trained task, the graphs to write (:class:`~rnnkit.export.graph.GraphSpec`), and for each
graph the *reference*: the model's own public call (``model(x, lengths)``, ``model.decode_step``,
``model.rnn.step`` ...) that the graph must reproduce, written so that it also runs on a float64 copy of the model
(for the noise floor of the verification). ``compose`` runs graphs together the way a consumer would (a step graph
driven over a sequence, then the head) and says what that must equal.

| task      | graphs                                                   | reference                              |
|-----------|----------------------------------------------------------|----------------------------------------|
| forecast  | sequence (x, future -> prediction), step (one patch)     | ``ForecastNet.forward``, ``rnn.step``  |
| classify  | sequence (tokens, lengths -> logits), step, head         | ``ManyToOne.forward``, ``rnn.step``    |
| tag, lm   | sequence (tokens, [lengths], state -> scores, state), step | ``ManyToMany.forward``/``decode_step`` |
| translate | encoder, decoder_step                                    | ``encode``, ``decode_step``, ``forward``|
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.batching import pad_sequences
from ..errors import option
from .graph import GraphSpec, IOSpec
from .recurrent import no_step_message

Feeds = dict[str, Tensor]
Run = Callable[[str, Feeds], Feeds]
GRAPH_NAMES = ("sequence", "step", "head", "encoder", "decoder_step")


def state_specs(layer: nn.Module, suffix: str = "", when: str | None = None) -> list[IOSpec]:
    """``h`` (and ``c``) of a recurrent layer: ``(L*D, batch, H)``; ``when`` ends their description."""
    shape = (layer.num_layers * layer.num_directions, "batch", layer.hidden_size)
    names = ("h", "c")[: layer.num_states]
    docs = {"h": "hidden state", "c": "LSTM cell state"}
    when = when or ("after the last step" if suffix else "to start from (zeros for a new sequence)")
    return [IOSpec(n + suffix, shape, doc=f"{docs[n]} {when}") for n in names]


def as_state(feeds: Feeds, n: int) -> tuple[Tensor, ...]:
    return tuple(feeds[k] for k in ("h", "c")[:n])


def state_out(state: tuple[Tensor, ...]) -> Feeds:
    return dict(zip(("h_out", "c_out"), state))


@dataclass
class Composite:
    """A check of graphs run together: ``got`` (the composition in onnxruntime) must equal ``want``."""

    label: str
    got: Feeds
    want: Feeds
    #: ``(model, float64) -> outputs``: what ``want`` holds, computed by PyTorch (for the verification's noise floor)
    reference: Callable[[nn.Module, bool], Feeds] | None = None


@dataclass
class Plan:
    """The graphs of one task and everything the verification needs to check them."""

    task: Any
    graphs: list[GraphSpec] = field(default_factory=list)
    references: dict[str, Callable[[nn.Module, Feeds], Feeds]] = field(default_factory=dict)
    real: dict[str, list[Feeds]] = field(default_factory=dict)
    train_length: int | None = None
    files: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def compose(self, run: Run, feeds: Feeds) -> list[Composite]:
        """Checks of graphs driven together on ``feeds`` of the first graph (none by default)."""
        return []

    def spec(self, name: str) -> GraphSpec:
        return next(g for g in self.graphs if g.name == name)

    def has(self, name: str) -> bool:
        return any(g.name == name for g in self.graphs)


def drive(step: Callable[[Feeds], Feeds], spec: GraphSpec, feeds: Feeds) -> Feeds:
    """Run a step graph (or its reference) over a sequence: ``feeds`` hold the step's first input with a time axis
    ``(B, T, ...)``, the initial ``h``/``c`` and the inputs that stay fixed. Returns the per-step outputs stacked on
    axis 1 and the final state."""
    first = spec.inputs[0].name
    xs, fixed = feeds[first], {k: v for k, v in feeds.items() if k != first}
    per_step: dict[str, list[Tensor]] = {}
    out: Feeds = {}
    for t in range(xs.shape[1]):
        out = step({**fixed, first: xs[:, t]})
        for k, v in out.items():
            if k.endswith("_out"):
                fixed[k[: -len("_out")]] = v
            else:
                per_step.setdefault(k, []).append(v)
    result = {k: torch.stack(v, 1) for k, v in per_step.items()}
    return result | {k: v for k, v in out.items() if k.endswith("_out")}


def select_graphs(names: tuple[str, ...] | None, available: list[str], bidirectional: bool, where: str) -> set[str]:
    if names is None:
        return set(available)
    unknown = sorted(set(names) - set(available) - ({"step", "head"} if bidirectional else set()))
    if unknown:
        raise ValueError(
            f"{where} has no graph {unknown[0]!r} ({option('graphs')}); its graphs are {', '.join(available)}"
        )
    if bidirectional and ({"step", "head"} & set(names)):
        raise ValueError(no_step_message(where))
    return set(names)


def batches(seqs: list[list[int]], pad: int, sizes: tuple[int, ...] = (1, 8)) -> list[tuple[Tensor, Tensor]]:
    """Padded real batches of ``seqs``: the first ``size`` sequences for each size."""
    out = []
    for n in sizes:
        chosen = [s for s in seqs if len(s)][:n]
        if chosen:
            out.append(pad_sequences(chosen, pad))
    return out


def to64(feeds: Feeds, yes: bool = True) -> Feeds:
    """Floating inputs in float64 (for the float64 copy of a model)."""
    return {k: v.double() if yes and v.is_floating_point() else v for k, v in feeds.items()}


def as_dict_state(feeds: Feeds, n: int) -> Feeds:
    return {k: feeds[k] for k in ("h", "c")[:n] if k in feeds}


def zero_state(rnn: nn.Module, B: int) -> Feeds:
    return dict(zip(("h", "c"), rnn.initial_state(B)))


def read_run_file(run: Path | None, name: str) -> str | None:
    if run is None or not (run / name).is_file():
        return None
    return (run / name).read_text(encoding="utf-8")


class LayerTask:
    """A bare :class:`~rnnkit.Recurrent` in the place of a task (``export_onnx(layer, out)``)."""

    name = "recurrent"

    def __init__(self, layer: nn.Module) -> None:
        self.model = layer

    def run_config(self) -> dict[str, Any]:
        m = self.model
        return {
            "task": "recurrent",
            "layer": {
                "cell": m.cell_kind,
                "input_size": m.input_size,
                "hidden_size": m.hidden_size,
                "num_layers": m.num_layers,
                "bidirectional": m.bidirectional,
            },
        }


def layer_plan(task: LayerTask, names: tuple[str, ...] | None) -> Plan:
    """A bare recurrent layer: ``sequence`` ``(x, lengths, h[, c]) -> (y, h_out[, c_out])`` and ``step``."""
    from .models import LayerSequence, LayerStep

    layer = task.model
    plan = Plan(task)
    bi = layer.bidirectional
    wanted = select_graphs(names, ["sequence"] if bi else ["sequence", "step"], bi, "this layer")
    F, Y = layer.input_size, layer.output_size
    if "sequence" in wanted:
        plan.graphs.append(
            GraphSpec(
                "sequence",
                LayerSequence(layer),
                [
                    IOSpec("x", ("batch", "time", F), doc="inputs"),
                    IOSpec("lengths", ("batch",), "lengths", "valid steps per sequence, 1..time"),
                    *state_specs(layer),
                ],
                [IOSpec("y", ("batch", "time", Y), doc="outputs, zero past each length"), *state_specs(layer, "_out")],
                "Recurrent.forward(x, state, lengths).",
            )
        )

        def ref_sequence(m: nn.Module, f: Feeds) -> Feeds:
            y, state = m(f["x"], as_state(f, m.num_states), f["lengths"])
            return {"y": y} | state_out(state)

        plan.references["sequence"] = ref_sequence
    if "step" in wanted:
        plan.graphs.append(
            GraphSpec(
                "step",
                LayerStep(layer),
                [IOSpec("x", ("batch", F), doc="this step's inputs"), *state_specs(layer)],
                [IOSpec("y", ("batch", Y), doc="output of the top layer"), *state_specs(layer, "_out")],
                "Recurrent.step(x, state).",
            )
        )

        def ref_step(m: nn.Module, f: Feeds) -> Feeds:
            y, state = m.step(f["x"], as_state(f, m.num_states))
            return {"y": y} | state_out(state)

        plan.references["step"] = ref_step

    def compose(run: Run, feeds: Feeds) -> list[Composite]:
        if not plan.has("step"):
            return []
        seq = {**feeds, "lengths": torch.full((len(feeds["x"]),), feeds["x"].shape[1], dtype=torch.long)}
        stepped = drive(lambda f: run("step", f), plan.spec("step"), {k: v for k, v in seq.items() if k != "lengths"})
        ref = plan.references["sequence"]
        label = "step graph driven T steps == sequence graph"
        return [Composite(label, stepped, run("sequence", seq), lambda m, wide: ref(m, to64(seq, wide)))]

    plan.compose = compose  # type: ignore[method-assign]
    return plan


def make_plan(task: Any, graphs: tuple[str, ...] | None = None, run: Path | None = None, data: Any = None) -> Plan:
    """The export plan of a trained task; ``graphs`` limits it (None: every graph the model has), ``run`` is the run
    directory whose held-out predictions give real inputs, ``data`` a forecaster's series for real windows."""
    if graphs is not None:
        bad = sorted(set(graphs) - set(GRAPH_NAMES))
        if bad:
            raise ValueError(f"unknown graph {bad[0]!r}; expected some of {', '.join(GRAPH_NAMES)}")
    from .task_plans import classify_plan, forecast_plan, lm_plan, tag_plan, translate_plan

    makers: dict[str, Callable[[], Plan]] = {
        "recurrent": lambda: layer_plan(task, graphs),
        "forecast": lambda: forecast_plan(task, graphs, data),
        "classify": lambda: classify_plan(task, graphs, run),
        "tag": lambda: tag_plan(task, graphs, run),
        "lm": lambda: lm_plan(task, graphs, run),
        "translate": lambda: translate_plan(task, graphs, run),
    }
    if task.name not in makers:
        raise ValueError(f"ONNX export knows the tasks {', '.join(makers)}; got a {task.name!r} model")
    return makers[task.name]()


def write_files(plan: Plan, out: Path) -> None:
    for name, content in plan.files.items():
        (out / name).write_text(json.dumps(content) + "\n")
