"""What did the network remember? Hidden-state traces, gate saturation, memory horizon and attention maps.

* :func:`trace` — per layer and direction, ``h`` (and ``c``) at every timestep and the gate activations, computed
  from the model's own parameters with each cell's own step, equal to the layer's outputs;
* :func:`memory_horizon` — gradient norm of an output at step T with respect to the input at every earlier step,
  as a curve over the lag, and the lag beyond which it stays below 1% of its maximum;
* :func:`saturation` — per gate and unit, how often the gate is below 0.1 / above 0.9;
* :func:`attention` — a translation model's attention weights (target steps × source positions);
* :func:`inspect_run` — all of it for a trained run, written as ``report.html`` and ``inspect.json``.
"""

from __future__ import annotations

from .attention import attention
from .horizon import Horizon, memory_horizon
from .saturation import Saturation, saturation
from .traces import Trace, trace, trace_layer


def __getattr__(name: str) -> object:
    # the report needs matplotlib: import it only when asked for
    if name in ("inspect_run", "ReportConfig"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Horizon",
    "ReportConfig",
    "Saturation",
    "Trace",
    "attention",
    "inspect_run",
    "memory_horizon",
    "saturation",
    "trace",
    "trace_layer",
]
