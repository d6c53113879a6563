"""Learning-rate schedules: linear warmup, then constant or cosine decay; reduce-on-plateau on top of either.

The state is a handful of numbers, kept as JSON in the checkpoint, so a resumed run continues the same schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass
class LRSchedule:
    """``lr(step) = base * warmup(step) * decay(step) * plateau_scale``.

    Attributes:
        base: the peak learning rate.
        kind: ``constant``, ``cosine`` (to ``min_ratio * base`` at ``total_steps``) or ``plateau`` (constant,
            multiplied by ``factor`` after ``patience`` evaluations without improvement).
        warmup_steps: linear warmup from ``base / warmup_steps``.
        total_steps: length of the cosine decay.
        min_ratio: the cosine floor as a fraction of ``base``.
        factor, patience, mode: reduce-on-plateau settings (``mode`` ``min`` or ``max`` of the metric).
    """

    base: float
    kind: str = "constant"
    warmup_steps: int = 0
    total_steps: int = 0
    min_ratio: float = 0.0
    factor: float = 0.5
    patience: int = 2
    mode: str = "min"
    plateau_scale: float = 1.0
    best: float | None = None
    bad_evals: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "cosine", "plateau"):
            raise ValueError(f"schedule must be 'constant', 'cosine' or 'plateau', got {self.kind!r}")
        if self.kind == "cosine" and self.total_steps < 1:
            raise ValueError("a cosine schedule needs the number of training steps (max_steps, or a sized loader)")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")

    def lr(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (0-based)."""
        scale = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "cosine":
            progress = min(1.0, max(0, step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
            scale *= self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return self.base * scale * self.plateau_scale

    def observe(self, metric: float, *, count: bool = True) -> bool:
        """Feed an evaluation result; returns True when the plateau rule just lowered the rate. With ``count``
        False a result that is no better is not counted as a bad evaluation (too early to call it a plateau)."""
        better = self.best is None or (metric < self.best if self.mode == "min" else metric > self.best)
        if better:
            self.best, self.bad_evals = metric, 0
            return False
        if not count:
            return False
        self.bad_evals += 1
        if self.kind == "plateau" and self.bad_evals >= self.patience:
            self.plateau_scale *= self.factor
            self.bad_evals = 0
            return True
        return False

    def state(self) -> dict:
        return asdict(self)


def steps_per_epoch(data: Iterable, tbptt: int | None = None) -> int | None:
    """Optimizer steps in one pass over ``data``: one per batch, or with ``tbptt`` one per chunk of ``tbptt``
    timesteps of each batch. None when that is unknown (no length; with ``tbptt``, no ``timestep`` either)."""
    try:
        batches = len(data)  # type: ignore[arg-type]
    except TypeError:
        return None
    if not tbptt:
        return batches
    timestep = getattr(data, "timestep", None)
    if not isinstance(timestep, int):
        return None
    streams = getattr(data, "x", None)  # StreamBatches: (B, steps) streams cut into windows of `timestep`
    length = streams.shape[1] if getattr(streams, "dim", lambda: 0)() == 2 else None
    if length is None or -(-length // timestep) != batches:
        return batches * -(-timestep // tbptt)
    full, rest = divmod(length, timestep)  # the last window may be shorter, and have fewer chunks
    return full * -(-timestep // tbptt) + -(-rest // tbptt)


def planned_steps(data: Iterable, epochs: int, tbptt: int | None = None, max_steps: int | None = None) -> int | None:
    """Optimizer steps a training will take: ``epochs`` times :func:`steps_per_epoch`, at most ``max_steps``."""
    per_epoch = steps_per_epoch(data, tbptt)
    if per_epoch is None:
        return max_steps
    return epochs * per_epoch if max_steps is None else min(epochs * per_epoch, max_steps)
