"""``export_onnx``: write a trained task's graphs, verify them in onnxruntime, describe them."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import option, style
from ..recurrent import Recurrent
from ..training.checkpoint import WEIGHTS
from .graph import DEFAULT_OPSET, export_graph
from .plans import GRAPH_NAMES, LayerTask, make_plan, write_files
from .readme import write_readme
from .verify import BATCH_SIZES, Verifier, lengths_for

FORMATS = ("onnx",)
OPSETS = range(17, 22)  # LayerNormalization needs 17; onnxruntime 1.18+ runs up to 21
#: every file an export may write; ``overwrite`` removes these and nothing else
EXPORT_FILES = (*(f"{g}.onnx" for g in GRAPH_NAMES), "config.json", "crf.json", "verify.json", "README.txt")
#: what marks a directory as a training run's (or a saved model's): an export never writes there
RUN_MARKS = ("model", "checkpoint", "best", WEIGHTS)


@dataclass
class ExportConfig:
    """Options of an export.

    Attributes:
        format: ``onnx`` (the only format).
        graphs: which graphs (``sequence``, ``step``, ``head``; translation: ``encoder``, ``decoder_step``); None
            for every graph the model has (a bidirectional model has no step graph).
        opset: ONNX opset, 17 to 21.
        data: a forecaster's series (CSV/Parquet) whose windows are the real inputs of the verification; the other
            tasks take theirs from the run directory's held-out predictions.
        overwrite: replace a non-empty output directory.
        batch_sizes: the batch sizes of the verification.
    """

    format: str = "onnx"
    graphs: tuple[str, ...] | None = None
    opset: int = DEFAULT_OPSET
    data: Path | None = None
    overwrite: bool = False
    batch_sizes: tuple[int, ...] = BATCH_SIZES

    def check(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unsupported export format {self.format!r}; expected {option('format', 'onnx')}")
        if self.opset not in OPSETS:
            raise ValueError(f"opset must be in {OPSETS.start}..{OPSETS.stop - 1}, got {option('opset', self.opset)}")
        if self.graphs is not None:
            bad = sorted(set(self.graphs) - set(GRAPH_NAMES))
            if bad:
                raise ValueError(
                    f"unknown graph {bad[0]!r} in {option('graphs')}; expected some of {', '.join(GRAPH_NAMES)}"
                )


@dataclass
class ExportResult:
    """Where the export went, its files, and the verification report (what ``verify.json`` holds)."""

    directory: Path
    files: list[str]
    report: dict[str, Any] = field(repr=False)


def export_onnx(source: Any, out: str | Path | None = None, cfg: ExportConfig | None = None) -> ExportResult:
    """Export a trained task to ONNX and verify it.

    Args:
        source: a run directory (or its ``model/``) made by ``rnnkit train``, a loaded task, or a bare
            :class:`~rnnkit.Recurrent` (graphs ``sequence``: ``(x, lengths, h[, c]) -> (y, h_out[, c_out])`` and
            ``step``).
        out: the output directory; default ``<run>/onnx``.
        cfg: options (:class:`ExportConfig`).

    Writes the graphs (``sequence.onnx``, ``step.onnx``, ``head.onnx``, or ``encoder.onnx`` and
    ``decoder_step.onnx``), ``config.json`` (the task's config and artifacts: vocabularies, labels, scaler),
    ``crf.json`` for a CRF tagger, ``verify.json`` and ``README.txt``. Raises ``VerificationError`` (a
    ``ValueError``) naming the worst error when a graph disagrees with PyTorch.
    """
    from .. import __version__
    from ..tasks import load

    cfg = cfg or ExportConfig()
    cfg.check()
    _require_extra()
    run = None
    if isinstance(source, (str, Path)):
        given = Path(source)
        run = given.parent if given.name == "model" and not (given / "model").is_dir() else given
    if out is None:
        if run is None:
            raise ValueError("export_onnx: give out= (the output directory) when exporting a loaded task")
        out = run / "onnx"
    out = _check_out(Path(out), cfg.overwrite)
    if isinstance(source, Recurrent):
        task: Any = LayerTask(_private(source))
    elif isinstance(source, (str, Path)):
        task = load(source, device="cpu")
        task.model = task.model.float().eval()  # loaded here: nobody else holds it
    else:
        task = copy.copy(source)  # the caller's task and model stay as they were (device, dtype, mode)
        task.model = _private(source.model)
    _clear(out)
    plan = make_plan(task, cfg.graphs, run, cfg.data)
    for spec in plan.graphs:
        export_graph(spec, out / spec.file, cfg.opset)
    (out / "config.json").write_text(json.dumps(task.run_config(), indent=2, default=float) + "\n")
    write_files(plan, out)
    lengths = lengths_for(plan.train_length)
    import onnxruntime

    extra = {
        "task": task.name,
        "rnnkit": __version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": cfg.opset,
        "exporter": "torch.onnx.export(dynamo=True)",
        "graphs": [g.file for g in plan.graphs],
    }
    verifier = Verifier(plan, out, cfg.batch_sizes)
    verifier.verify(lengths)
    report = verifier.report(lengths, extra)
    skipped = _skipped(task, plan)
    write_readme(out / "README.txt", plan, report, skipped)
    verifier.write(out / "verify.json", lengths, extra)  # raises after everything is on disk for inspection
    return ExportResult(out, sorted(p.name for p in out.iterdir() if p.name in EXPORT_FILES), report)


def _require_extra() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"ONNX export needs {', '.join(missing)}: pip install 'rnnkit[export]'")


def _skipped(task: Any, plan: Any) -> list[str]:
    if plan.has("step") or task.name == "translate":
        return []
    return [
        "step.onnx, head.onnx: the recurrent layer is bidirectional; its backward direction starts at the end of the "
        "sequence, so it cannot run one step at a time."
    ]


def _private(model: Any) -> Any:
    """A float32, eval-mode CPU copy of ``model`` (the export never changes the caller's)."""
    return copy.deepcopy(model).to("cpu").float().eval()


def _check_out(out: Path, overwrite: bool) -> Path:
    """Refuse a file, a run (or model) directory, and (without ``overwrite``) a directory that holds files."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory; choose another {option('out')}")
    if out.is_dir():
        marks = [m for m in RUN_MARKS if (out / m).exists()]
        if marks:
            raise ValueError(
                f"{out} holds a training run or a saved model ({marks[0]}); an export never writes there: choose "
                f"another {option('out')} (default: RUN/onnx)"
            )
        if any(out.iterdir()) and not overwrite:
            flag = "--overwrite" if style() == "cli" else "overwrite=True"
            raise ValueError(f"{out} already holds files; pass {flag} to replace them")
    return out


def _clear(out: Path) -> None:
    """Create ``out``, or remove an earlier export's files from it (only those: the user's other files stay)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        target = out / name
        if target.is_file() or target.is_symlink():
            target.unlink()
