"""One exported graph: what it is called, its named inputs and outputs, and the call that writes it.

A :class:`GraphSpec` pairs an export wrapper (an ``nn.Module`` whose ``forward(*inputs)`` returns a tuple in output
order) with the names, shapes and kinds of its inputs and outputs. The same description drives the exporter
(names, dynamic axes), the random inputs of the verification, and ``README.txt``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

#: example sizes of the dynamic axes while tracing: distinct primes, so that no two axes are mistaken for one
EXAMPLE_SIZES = {"batch": 3, "time": 7, "source": 11}
DEFAULT_OPSET = 18


@dataclass
class IOSpec:
    """One input or output of a graph.

    Attributes:
        name: the ONNX name.
        shape: sizes, with names for the dynamic axes (``"batch"``, ``"time"``, ``"source"``).
        kind: ``float`` (float32), ``tokens`` (int64 ids in ``0..high-1``), ``lengths`` (int64 ``(B,)`` valid steps
            in ``1..T``), ``mask`` (bool, True at valid source positions, a prefix of each row).
        doc: one line for README.txt.
        high: the vocabulary size of ``tokens``.
        length_of: for ``lengths``/``mask``: the dynamic axis they describe (``time`` or ``source``).
    """

    name: str
    shape: tuple[str | int, ...]
    kind: str = "float"
    doc: str = ""
    high: int = 0
    length_of: str = "time"

    @property
    def dtype(self) -> str:
        return {"tokens": "int64", "lengths": "int64", "mask": "bool"}.get(self.kind, "float32")

    def describe(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"{self.name:<14} {self.dtype:<8} ({dims})" + (f"  {self.doc}" if self.doc else "")


@dataclass
class GraphSpec:
    """A graph to write: ``file`` (``step.onnx`` ...), the wrapper module and its inputs and outputs."""

    name: str
    module: nn.Module
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    doc: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


def sample_inputs(
    spec: GraphSpec, sizes: dict[str, int], generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> dict[str, Tensor]:
    """Random inputs for ``spec`` with the dynamic axes set to ``sizes``; one sequence of each batch runs to the
    full length, the others end at random lengths (and source masks are prefixes of the same kind)."""
    out: dict[str, Tensor] = {}
    for io in spec.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in io.shape)
        if io.kind == "float":
            out[io.name] = torch.randn(shape, generator=generator, dtype=dtype)
        elif io.kind == "tokens":
            out[io.name] = torch.randint(0, io.high, shape, generator=generator)
        else:
            n = sizes[io.length_of]
            lengths = torch.randint(1, n + 1, shape[:1], generator=generator)
            lengths[0] = n
            out[io.name] = lengths if io.kind == "lengths" else torch.arange(n)[None, :] < lengths[:, None]
    return out


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporter's warnings and log lines are about its own internals; keep them off the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def shared_registry() -> Iterator[None]:
    """Build the exporter's table of ONNX translations once per opset instead of once per graph (2-3 s each).

    ``torch.onnx.export`` rebuilds it on every call; we export several graphs per model and never add to it. A
    private hook of torch 2.13, so it is used only where it exists and undone afterwards.
    """
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:  # pragma: no cover - another torch
        yield
        return
    cls = _registration.ONNXRegistry
    original = cls.__dict__.get("from_torchlib")
    if not isinstance(original, classmethod):  # pragma: no cover - another torch
        yield
        return

    def cached(klass: type, opset_version: int = 18) -> object:
        if opset_version not in _REGISTRIES:
            _REGISTRIES[opset_version] = original.__func__(klass, opset_version)
        return _REGISTRIES[opset_version]

    cls.from_torchlib = classmethod(cached)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        cls.from_torchlib = original  # type: ignore[method-assign]


_REGISTRIES: dict[int, object] = {}


def export_graph(spec: GraphSpec, path: Path, opset: int = DEFAULT_OPSET) -> None:
    """Trace ``spec.module`` with torch's dynamo-based exporter and write ``path`` (one self-contained file),
    with the dynamic axes named as in ``spec`` (``batch``, ``time`` ...)."""
    import onnx

    gen = torch.Generator().manual_seed(0)
    example = sample_inputs(spec, EXAMPLE_SIZES, gen)
    args = tuple(example[io.name] for io in spec.inputs)
    dyn = torch.export.Dim.DYNAMIC
    shapes = tuple({i: dyn for i, d in enumerate(io.shape) if isinstance(d, str)} for io in spec.inputs)
    spec.module.eval()
    with quiet(), shared_registry(), torch.no_grad():
        program = torch.onnx.export(
            spec.module,
            args,
            input_names=[io.name for io in spec.inputs],
            output_names=[io.name for io in spec.outputs],
            dynamo=True,
            dynamic_shapes={"inputs": shapes},
            opset_version=opset,
            verbose=False,
            optimize=True,
        )
    model = program.model_proto
    _name_axes(model, spec)
    model.doc_string = spec.doc
    model.producer_name = "rnnkit"
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def _name_axes(model: object, spec: GraphSpec) -> None:
    """Replace the exporter's symbols (``s27``) by the axis names of the spec, on inputs, outputs and values."""
    graph = model.graph  # type: ignore[attr-defined]
    names: dict[str, str] = {}
    for io, value in zip(spec.inputs, graph.input):
        for d, dim in zip(io.shape, value.type.tensor_type.shape.dim):
            if isinstance(d, str) and dim.dim_param:
                names.setdefault(dim.dim_param, d)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]
    for io, value in zip(spec.inputs + spec.outputs, [*graph.input, *graph.output]):
        value.doc_string = io.doc
