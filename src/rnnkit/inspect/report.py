"""``rnnkit inspect``: one trained run, one example, one self-contained HTML report and its numbers in JSON.

The report shows the chosen example's hidden states (units × time, with the input along time), the units that
vary most, how saturated each gate unit is (over a batch of examples), the memory-horizon curve with its number,
a translation model's attention map, and for text models the input coloured by one unit's activation.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..devices import to_device
from ..errors import option
from ..tasks.base import Task, check_writable
from . import figures
from .attention import attention as attention_weights
from .capture import SteppedLayerError
from .examples import Examples, examples_for
from .horizon import Horizon, memory_horizon
from .saturation import Saturation, saturation
from .traces import Trace, trace

REPORT, NUMBERS = "report.html", "inspect.json"
HEATMAP, TOP_UNITS, SATURATION = "Hidden-state heatmap", "Top units by variance", "Gate saturation"
HORIZON, ATTENTION, COLOURED = "Memory horizon", "Attention map", "Input coloured by unit"


@dataclass
class ReportConfig:
    """What ``rnnkit inspect`` shows.

    Attributes:
        example: index of the example drawn (a window, text, sentence ...; 0-based).
        unit: text models: the unit of the top layer whose activation colours the input (default: the unit that
            varies most over the example).
        attention: draw the attention map (translation); ``None``: when the model has attention, ``True``: it is
            an error if it has none.
        examples: examples the memory horizon and the gate saturation are averaged over.
        top_units: units drawn as lines.
        layer: the recurrent layer to inspect (``encoder``, ``decoder`` ...); default: the first (an encoder).
    """

    example: int = 0
    unit: int | None = None
    attention: bool | None = None
    examples: int = 64
    top_units: int = 6
    layer: str | None = None


@dataclass
class Findings:
    """Everything the report shows, computed."""

    task: Task
    example: int
    ex: Examples
    trace: Trace
    saturation: Saturation
    horizon: Horizon | None
    unit: int
    top: list[int]
    attention: np.ndarray | None
    horizon_note: str = ""  # why there is no horizon


def _check_attention(task: Task, cfg: ReportConfig) -> bool:
    """Whether to draw attention; asking for it of a run without it is an error naming the fix."""
    has = task.name == "translate" and getattr(task.model, "attention", None) is not None
    if cfg.attention and task.name != "translate":
        raise ValueError(
            f"attention maps are for translate runs (a decoder attending over a source); this is a {task.name} run: "
            f"drop {option('attention')}"
        )
    if cfg.attention and not has:
        raise ValueError(
            f"this translation model was trained without attention; retrain with {option('attention', 'general')} "
            f"(or bahdanau, dot) to see attention maps, or drop {option('attention')}"
        )
    return has if cfg.attention is None else bool(cfg.attention)


def analyse(task: Task, data: Path | None, text: str | None, cfg: ReportConfig) -> Findings:
    """Run every inspection on ``task`` for the chosen example (and a batch of examples)."""
    want_attention = _check_attention(task, cfg)
    ex = examples_for(task, data, text, cfg.example, cfg.examples, cfg.layer)
    dev = task.device
    model = task.model.eval()
    tr = trace(model, to_device(ex.chosen, dev), layer=cfg.layer)
    values = tr.output[0].cpu()  # (T, D*H)
    size = values.shape[1]
    if cfg.unit is not None and not 0 <= cfg.unit < size:
        raise ValueError(
            f"{option('unit', cfg.unit)} is out of range: the inspected layer's output has {size} units "
            f"(choose {option('unit')} 0..{size - 1})"
        )
    spread = values.var(0) if values.shape[0] > 1 else values.abs()[0]
    top = spread.argsort(descending=True)[: cfg.top_units].tolist()
    unit = cfg.unit if cfg.unit is not None else top[0]
    batch = to_device(ex.batch, dev)
    sat = saturation(trace(model, batch, layer=cfg.layer))
    horizon: Horizon | None = None
    note = ""
    try:
        horizon = memory_horizon(model, batch, ex.output, layer=cfg.layer)
    except SteppedLayerError:
        note = (
            f"No memory horizon for the {cfg.layer} layer: the model runs it one step at a time, each step's input "
            "made from the previous state (attention before the step), so there is no input sequence to "
            "differentiate with respect to. The encoder's horizon is the default layer's."
        )
    weights = None
    if want_attention and ex.translation is not None:
        src, src_len, tgt_in = to_device(ex.translation[:3], dev)
        weights = attention_weights(model, src, src_len, tgt_in)[0].cpu().numpy()
    return Findings(task, cfg.example, ex, tr, sat, horizon, unit, top, weights, note)


# ---- writing -------------------------------------------------------------------------------------------------------
def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _figure(title: str, body: str, caption: str) -> str:
    slug = title.lower().replace(" ", "-")
    return (
        f'<figure id="{slug}"><h2>{html.escape(title)}</h2>{body}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _coloured(labels: list[str], values: np.ndarray, joiner: str) -> str:
    """The input's tokens with a background from blue (negative) to red (positive) by ``values``."""
    top = float(np.abs(values).max()) or 1.0
    spans = []
    for token, v in zip(labels, values):
        a = min(abs(float(v)) / top, 1.0)
        rgb = "214,39,40" if v > 0 else "31,119,180"
        spans.append(
            f'<span title="{float(v):+.3f}" style="background: rgba({rgb},{a:.2f})">{html.escape(token)}</span>'
        )
    return f'<p class="tokens">{joiner.join(spans)}</p>'


def _direction_note(tr: Trace) -> str:
    if tr.num_directions == 1:
        return ""
    H = tr.hidden_size
    return f" Units 0-{H - 1} read forwards, {H}-{2 * H - 1} backwards."


def lags(n: int, patch: int = 1) -> str:
    """``n`` steps of the recurrent layer in words: ``3 steps``, or ``3 patches of 4 steps`` for a layer that reads
    a patch of ``patch`` input steps per step."""
    if patch == 1:
        return f"{n} step{'s' if n != 1 else ''}"
    return f"{n} patch{'es' if n != 1 else ''} of {patch} steps"


def render(f: Findings, run: str | Path) -> tuple[str, dict[str, Any]]:
    """The HTML page and the JSON numbers of ``f``."""
    tr, ex, task = f.trace, f.ex, f.task
    labels = ex.labels[: tr.output.shape[1]]
    values = tr.output[0].cpu().numpy()  # (T, D*H)
    where = f"layer {tr.num_layers - 1} (top) of {tr.num_layers}"
    sections: list[str] = []
    names: list[str] = []

    def add(title: str, body: str, caption: str) -> None:
        sections.append(_figure(title, body, caption))
        names.append(title)

    P = ex.patch
    column = "a timestep of the input shown below it" if P == 1 else f"a patch of {P} steps (shown by its last value)"
    png = figures.save(figures.heatmap(values, labels, f"{tr.cell}: hidden state h_t, {where}"))
    add(
        HEATMAP,
        _img(png, HEATMAP),
        f"Each row is a unit, each column {column}; red positive, blue negative. "
        f"Each column is the network's draft after reading up to that step.{_direction_note(tr)}",
    )
    png = figures.save(figures.unit_lines(values, f.top, labels, f"the {len(f.top)} units that vary most"))
    add(TOP_UNITS, _img(png, TOP_UNITS), "The units whose activation varies most over this example.")
    if f.saturation.left:
        png = figures.save(figures.saturation_scatter(f.saturation, f"{tr.cell} gates, {f.saturation.steps} steps"))
        add(
            SATURATION,
            _img(png, SATURATION),
            "One point per gate unit (all layers and directions): how often it is nearly shut (x) or open (y). "
            "A forget/keep gate open most of the time is a long memory; units off both axes switch with the input.",
        )
    else:
        sections.append(f'<p class="note">A {html.escape(tr.cell)} cell has no gates: no saturation plot.</p>')
    h = f.horizon
    if h is not None:
        number = f"at least {lags(h.horizon, P)} (the whole input)" if h.reached_end else lags(h.horizon, P)
        n = h.by_step.shape[0]
        per_lag = "steps" if P == 1 else f"patches of {P} steps"
        png = figures.save(figures.horizon_curves({tr.cell: h}, f"memory horizon: {number}", per_lag))
        add(
            HORIZON,
            _img(png, HORIZON),
            f"Norm of the gradient of {ex.output_name} with respect to the input at each earlier "
            f"{'step' if P == 1 else 'patch'}, averaged over {n} example{'s' if n != 1 else ''}, against the lag. "
            f"The memory horizon is {number}: beyond it the curve stays below {h.threshold:.0%} of its peak.",
        )
    else:
        sections.append(f'<p class="note">{html.escape(f.horizon_note)}</p>')
    if f.attention is not None:
        source, target = ex.translation[3], ex.translation[4]  # type: ignore[index]
        png = figures.save(figures.attention_map(f.attention, source, target, "attention of each target word"))
        add(ATTENTION, _img(png, ATTENTION), "Row t: how the decoder spread its attention over the source words.")
    if ex.text:
        chars = getattr(task.cfg, "level", "word") == "char"
        tokens = [{"␣": " ", "↵": "↵\n"}.get(t, t) for t in labels] if chars else labels
        add(
            f"{COLOURED} {f.unit}",
            _coloured(tokens, values[:, f.unit], "" if chars else " "),
            f"Each token's background is unit {f.unit}'s activation after reading it (red positive, blue negative; "
            f"hover for the value). Choose another unit with {option('unit')}.",
        )
    head = (
        f"<h1>What did it remember? {html.escape(str(run))}</h1>"
        f"<p>{html.escape(task.name)} model, {html.escape(tr.cell)} cell, {tr.num_layers} layer(s) × "
        f"{tr.num_directions} direction(s) × {tr.hidden_size} units. Example {f.example} of {ex.count} "
        f"(0-based): {lags(len(labels), P)}.</p><p><b>Prediction</b>: {html.escape(ex.prediction)}</p>"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>rnnkit inspect</title><style>"
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}img{max-width:100%}"
        "figure{margin:2em 0}figcaption{color:#555}.tokens{font-family:monospace;line-height:1.9;"
        "white-space:pre-wrap}.tokens span{padding:1px 0}.note{color:#777}"
        f"</style></head><body>{head}{''.join(sections)}</body></html>\n"
    )
    numbers = {
        "run": str(run),
        "task": task.name,
        "cell": tr.cell,
        "layers": tr.num_layers,
        "directions": tr.num_directions,
        "hidden_size": tr.hidden_size,
        "example": f.example,
        "examples": ex.count,
        "inputs": labels,
        "prediction": ex.prediction,
        "horizon": None
        if h is None
        else {
            **h.to_json(),
            "output": ex.output_name,
            "lag_unit": "step" if P == 1 else f"patch of {P} steps",
            "steps_per_lag": P,
        },
        "saturation": f.saturation.to_json(),
        "top_units": [{"unit": u, "values": values[:, u].round(5).tolist()} for u in f.top],
        "unit": {"index": f.unit, "values": values[:, f.unit].round(5).tolist()},
        "figures": names,
    }
    if h is None:
        numbers["horizon_note"] = f.horizon_note
    if f.attention is not None:
        numbers["attention"] = {
            "source": ex.translation[3],  # type: ignore[index]
            "target": ex.translation[4],  # type: ignore[index]
            "weights": f.attention.round(5).tolist(),
        }
    return page, numbers


def inspect_run(
    run: str | Path,
    out: str | Path | None = None,
    *,
    data: str | Path | None = None,
    text: str | None = None,
    cfg: ReportConfig | None = None,
    device: str | torch.device = "auto",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Inspect the trained run ``run`` on ``data`` (the task's input format) or ``text``; write ``report.html``
    and ``inspect.json`` into ``out`` (default ``run/inspect``). Returns the JSON numbers."""
    from ..tasks import load

    cfg = cfg or ReportConfig()
    out = Path(out) if out is not None else Path(run) / "inspect"
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option('out')} {out} is a file; give a directory for the report")
    page_path, json_path = check_writable(out / REPORT, overwrite), check_writable(out / NUMBERS, overwrite)
    task = load(run, device)
    found = analyse(task, None if data is None else Path(data), text, cfg)
    page, numbers = render(found, run)
    page_path.write_text(page, encoding="utf-8")  # type: ignore[union-attr]
    json_path.write_text(json.dumps(numbers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")  # type: ignore[union-attr]
    return numbers
