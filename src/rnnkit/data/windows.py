"""Prepared series and their sliding windows (what a forecaster trains and is scored on).

Several series (the long format, one row per series and time step) are laid end to end in one array; each has
its own rows, split and scaler, and a window never crosses from one series into the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import option
from .scaling import Scaler

if TYPE_CHECKING:
    from .panel import StaticEncoder
    from .series_config import SeriesConfig

PARTS = ("train", "val", "test", "all")


@dataclass
class SeriesData:
    """Prepared series: scaled features, split borders and the fitted scalers.

    Attributes:
        cfg: the series options, with the lookback (``timestep``) resolved.
        values: ``(N, F)`` scaled inputs in column order ``input_columns`` (targets first), all series end to end.
        future: ``(N, F_future)`` scaled known-future covariates (may have 0 columns; static covariates are here).
        targets: ``(N, n_targets)`` scaled targets.
        times: the parsed time column, if any.
        parts: ``(S, 4)`` rows where each series starts and where its train, val and test parts end.
        scalers: one per series, fitted on that series' training rows.
        ids: the series' names (``[""]`` for a table that is one series).
        season: the seasonal period (given, or inferred from the time column).
        skipped: series left out, with the reason (too short for one window per part).
        static: the encoder of the static covariates, if any.
    """

    cfg: SeriesConfig
    values: np.ndarray
    future: np.ndarray
    targets: np.ndarray
    times: pd.Series | None
    parts: np.ndarray
    scalers: list[Scaler]
    input_columns: list[str]
    future_columns: list[str]
    ids: list[str] = field(default_factory=lambda: [""])
    season: int = 1
    skipped: dict[str, str] = field(default_factory=dict)
    static: StaticEncoder | None = None

    @property
    def borders(self) -> tuple[int, int, int]:
        """Where train, val and test end, counted from the start of the (first) series."""
        start, *ends = (int(v) for v in self.parts[0])
        return ends[0] - start, ends[1] - start, ends[2] - start

    @property
    def scaler(self) -> Scaler:
        """The scaler of the (first) series."""
        return self.scalers[0]

    def rows(self, i: int) -> slice:
        """The rows of series ``i``."""
        return slice(int(self.parts[i, 0]), int(self.parts[i + 1, 0]) if i + 1 < len(self.parts) else len(self.values))

    def part_range(self, i: int, part: str) -> tuple[int, int]:
        """``(first, stop)`` rows of ``part`` of series ``i`` (absolute)."""
        start, train, val, test = (int(v) for v in self.parts[i])
        stop = self.rows(i).stop
        return {"train": (start, train), "val": (train, val), "test": (val, test), "all": (start, stop)}[part]

    def windows(self, part: str) -> WindowDataset:
        """Windows whose targets lie in ``train``, ``val``, ``test`` (inputs may reach back before the border)
        or anywhere (``all``), over every series."""
        if part not in PARTS:
            raise ValueError(f"{option('part')} must be 'train', 'val', 'test' or 'all', got {part!r}")
        L, H = self.cfg.timestep, self.cfg.horizon
        starts, series = [], []
        for i in range(len(self.ids)):
            first, stop = self.part_range(i, part)
            begin = self.rows(i).start
            first_target = max(first, begin + L)  # a window needs `timestep` rows of its series before its target
            s = np.arange(first_target - L, stop - H - L + 1, self.cfg.stride)
            starts.append(s)
            series.append(np.full(len(s), i))
        all_starts = np.concatenate(starts).astype(np.int64)
        if len(all_starts) == 0:
            first, stop = self.part_range(0, part)
            larger = f", or a larger {option(part)} part (at least {H} rows)" if part != "all" else ""
            raise ValueError(
                f"the {part} part (rows {first}..{stop}) is too short for one window of timestep {L} + horizon {H}; "
                f"use a smaller {option('timestep')} or {option('horizon')}{larger}"
            )
        return WindowDataset(self, all_starts, np.concatenate(series).astype(np.int64))


class WindowDataset(Dataset):
    """Sliding windows: item ``i`` is ``(x (timestep, F), x_future (horizon, F_future), y (horizon, n_targets))``.

    ``starts`` are rows of :class:`SeriesData` (all series end to end); ``series`` the series of each window.
    """

    def __init__(self, data: SeriesData, starts: np.ndarray, series: np.ndarray | None = None) -> None:
        self.data, self.starts = data, starts
        self.series = series if series is not None else np.zeros(len(starts), dtype=np.int64)
        cfg = data.cfg
        self.x = torch.as_tensor(data.values, dtype=torch.float32)
        self.f = torch.as_tensor(data.future, dtype=torch.float32)
        self.y = torch.as_tensor(data.targets, dtype=torch.float32)
        self.L, self.H = cfg.timestep, cfg.horizon

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        s = int(self.starts[i])
        t = s + self.L
        return self.x[s:t], self.f[t : t + self.H], self.y[t : t + self.H]

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """All windows stacked: ``x (N, timestep, F)``, ``x_future (N, horizon, F_f)``, ``y (N, horizon, n)``."""
        idx = torch.as_tensor(self.starts)[:, None]
        x = self.x[idx + torch.arange(self.L)]
        f = self.f[idx + self.L + torch.arange(self.H)]
        y = self.y[idx + self.L + torch.arange(self.H)]
        return x, f, y

    def subset(self, keep: np.ndarray) -> WindowDataset:
        """The windows selected by the boolean or index array ``keep``."""
        return WindowDataset(self.data, self.starts[keep], self.series[keep])
