"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, fig. 3): how often each gate unit is nearly shut or open.

A unit whose forget gate is right-saturated (above 0.9 most of the time) keeps its cell state: an integrator, a
long memory. One left-saturated (below 0.1) resets at every step. Units in between switch with the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .traces import Trace


@dataclass
class Saturation:
    """Per gate and unit, the fraction of valid steps the gate is below ``low`` (left) and above ``high`` (right).

    Attributes:
        left, right: gate name -> ``(L*D, H)`` fractions, rows in the trace's (layer, direction) order.
        low, high: the thresholds.
        steps: valid steps counted (over all examples of the trace).
    """

    left: dict[str, Tensor]
    right: dict[str, Tensor]
    low: float
    high: float
    steps: int

    def to_json(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "steps": self.steps,
            "gates": {
                name: {
                    "left_mean": float(self.left[name].mean()),
                    "right_mean": float(self.right[name].mean()),
                    "left": self.left[name].tolist(),
                    "right": self.right[name].tolist(),
                }
                for name in self.left
            },
        }


def saturation(trace: Trace, low: float = 0.1, high: float = 0.9) -> Saturation:
    """The left/right saturation of every sigmoid gate in ``trace`` (none for a gateless cell); padding is not
    counted."""
    if not 0 <= low < high <= 1:
        raise ValueError(f"saturation: need 0 <= low < high <= 1, got low={low}, high={high}")
    mask = trace.mask.to(trace.inputs.device).unsqueeze(-1)  # (B, T, 1)
    steps = int(mask.sum())
    left: dict[str, Tensor] = {}
    right: dict[str, Tensor] = {}
    names = [n for n in trace.gate_names if all(n in g for g in trace.gates)]
    for name in names:
        values = [g[name] for g in trace.gates]  # each (B, T, H)
        left[name] = torch.stack([((v < low) & mask).sum((0, 1)) for v in values]).float().cpu() / max(steps, 1)
        right[name] = torch.stack([((v > high) & mask).sum((0, 1)) for v in values]).float().cpu() / max(steps, 1)
    return Saturation(left, right, low, high, steps)
