"""Training options: :class:`TrainerConfig` and the ``--checkpoint-every`` parser."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import option
from ..precision import PRECISIONS

__all__ = ["TrainerConfig", "parse_every"]


@dataclass
class TrainerConfig:
    """Optimisation and bookkeeping options.

    Attributes:
        epochs: passes over the training data; ``None`` adapts the length to the data: train until ``monitor`` has
            not improved for ``early_stopping`` evaluations (after at least ``min_steps`` updates), at most
            ``max_epochs`` passes and ``time_budget`` minutes.
        max_epochs: the most passes when ``epochs`` is None.
        min_steps: early stopping never ends training before this many optimizer steps (a small data set still
            gets enough updates to learn; a metric that is 0 for the first epochs is not a plateau).
        time_budget: stop (keeping the best weights) once training has run this many minutes; None: no limit.
        max_steps: stop after this many optimizer steps (overrides ``epochs`` when reached first).
        lr, weight_decay, betas: AdamW.
        clip_norm: clip the global gradient norm to this (None: no clipping).
        schedule: ``constant``, ``cosine`` (needs a known number of steps) or ``plateau``; ``warmup_steps`` of
            linear warmup first; ``min_lr_ratio`` the cosine floor; ``plateau_factor``/``plateau_patience``.
        early_stopping: stop after this many evaluations without improvement of ``monitor`` (None: never).
        monitor, mode: the validation metric that decides "better" (``min`` or ``max``).
        early_stopping_floor: early stopping waits until ``monitor`` has once been better than this (e.g. ``0.0``
            for an F1: a model that has found nothing yet has not reached a plateau); None: no floor.
        plateau_waits: the plateau schedule waits as early stopping does: an evaluation without improvement only
            counts after ``min_steps`` updates and past ``early_stopping_floor``, so a small data set learns at
            the full rate for its ``min_steps`` updates (else the rate may be halved away within a few epochs).
        eval_every: evaluate every this many steps (None: at the end of every epoch).
        checkpoint_every: also checkpoint every this many steps (checkpoints are always written at the end of an
            epoch and when training ends or is interrupted).
        checkpoint_minutes: also checkpoint when this many minutes passed since the last checkpoint (None: not
            by time). ``--checkpoint-every`` sets this or ``checkpoint_every`` (see :func:`parse_every`).
        tbptt: truncated-BPTT window in timesteps: carry the state across batches, cut gradients every window.
        log_every: steps between rows of ``metrics.csv``.
        seed: seeds Python, NumPy and torch at the start of a fresh run, and the order of DataLoaders without a
            generator of their own.
        progress: show progress: a bar on a terminal, otherwise a plain line every ``progress_seconds`` seconds
            and one per evaluation.
        device: where to train: ``auto`` (CUDA if present, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``fp32``; ``bf16`` (mixed precision under torch's autocast: products in bf16, parameters,
            optimizer and loss in float32; CPUs with AVX512-BF16/AMX and most GPUs); ``fp16`` (CUDA, with gradient
            scaling). See :mod:`rnnkit.precision`.
    """

    epochs: int | None = 10
    max_epochs: int = 100
    min_steps: int = 0
    time_budget: float | None = None
    max_steps: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float | None = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    early_stopping: int | None = None
    monitor: str = "val_loss"
    mode: str = "min"
    early_stopping_floor: float | None = None
    plateau_waits: bool = False
    eval_every: int | None = None
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = 5.0
    tbptt: int | None = None
    log_every: int = 20
    seed: int = 0
    progress: bool = True
    progress_seconds: float = 30.0
    device: str = "auto"
    precision: str = "fp32"

    @property
    def epoch_limit(self) -> int:
        """The most passes over the data: ``epochs``, or ``max_epochs`` when the length adapts."""
        return self.epochs if self.epochs is not None else self.max_epochs

    def __post_init__(self) -> None:
        def bad(name: str, rule: str, value: object) -> ValueError:
            return ValueError(f"TrainerConfig: {option(name)} must be {rule}, got {value}")

        if self.epochs is not None and self.epochs < 1:
            raise bad("epochs", ">= 1", self.epochs)
        if self.max_epochs < 1:
            raise bad("max_epochs", ">= 1", self.max_epochs)
        if self.min_steps < 0:
            raise bad("min_steps", ">= 0", self.min_steps)
        if self.time_budget is not None and not self.time_budget > 0:
            raise bad("time_budget", "> 0 minutes", self.time_budget)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "a positive number", self.lr)
        for name in ("tbptt", "checkpoint_every", "log_every", "max_steps", "early_stopping"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise bad(name, ">= 1", value)
        if self.checkpoint_minutes is not None and not self.checkpoint_minutes > 0:
            raise bad("checkpoint_minutes", "> 0", self.checkpoint_minutes)
        if self.progress_seconds < 0:
            raise bad("progress_seconds", ">= 0", self.progress_seconds)
        if self.mode not in ("min", "max"):
            raise bad("mode", "'min' or 'max'", repr(self.mode))
        if self.precision not in PRECISIONS:
            raise bad("precision", " or ".join(PRECISIONS), repr(self.precision))


_EVERY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?")


def parse_every(text: str) -> tuple[int | None, float | None]:
    """``--checkpoint-every``: ``"500"`` -> ``(500, None)`` (steps); ``"90s"``, ``"10m"``, ``"1.5h"`` ->
    ``(None, minutes)``; ``"off"`` -> ``(None, None)`` (only the checkpoints at epoch ends and at the end).
    The pair is ``(TrainerConfig.checkpoint_every, TrainerConfig.checkpoint_minutes)``."""
    s = text.strip().lower()
    if s in ("off", "none", "never"):
        return None, None
    m = _EVERY.fullmatch(s)
    if m and float(m[1]) > 0:
        if m[2] is None and m[1].isdigit():
            return int(m[1]), None
        if m[2] is not None:
            return None, float(m[1]) * {"s": 1 / 60, "m": 1.0, "h": 60.0}[m[2][0]]
    raise ValueError(f"--checkpoint-every: expected steps (500), a duration (90s, 10m, 1h) or 'off', got {text!r}")
