"""A prepared series and its sliding windows (what a forecaster trains and is scored on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import option
from .scaling import Scaler

if TYPE_CHECKING:
    from .timeseries import SeriesConfig


@dataclass
class SeriesData:
    """A prepared series: scaled features, split borders and the fitted scaler.

    Attributes:
        values: ``(N, F)`` scaled inputs in column order ``input_columns`` (targets first).
        future: ``(N, F_future)`` scaled known-future covariates (may have 0 columns).
        targets: ``(N, n_targets)`` scaled targets.
        times: the parsed time column, if any.
        borders: row index where train, val and test end.
    """

    cfg: SeriesConfig
    values: np.ndarray
    future: np.ndarray
    targets: np.ndarray
    times: pd.Series | None
    borders: tuple[int, int, int]
    scaler: Scaler
    input_columns: list[str]
    future_columns: list[str]

    def windows(self, part: str) -> WindowDataset:
        """Windows whose targets lie in ``train``, ``val``, ``test`` (inputs may reach back before the border)
        or anywhere (``all``)."""
        if part not in ("train", "val", "test", "all"):
            raise ValueError(f"part must be 'train', 'val', 'test' or 'all', got {part!r}")
        start = {"train": 0, "val": self.borders[0], "test": self.borders[1], "all": 0}[part]
        stop = {"train": self.borders[0], "val": self.borders[1], "test": self.borders[2], "all": len(self.values)}[
            part
        ]
        L, H = self.cfg.timestep, self.cfg.horizon
        first_target = max(start, L)  # a window needs `timestep` rows before its first target
        starts = np.arange(first_target - L, stop - H - L + 1, self.cfg.stride)
        if len(starts) == 0:
            larger = f", or a larger {option(part)} part" if part != "all" else ""
            raise ValueError(
                f"the {part} part (rows {start}..{stop}) is too short for one window of timestep {L} + horizon {H}; "
                f"use a smaller {option('timestep')} or {option('horizon')}{larger}"
            )
        return WindowDataset(self, starts)


class WindowDataset(Dataset):
    """Sliding windows: item ``i`` is ``(x (timestep, F), x_future (horizon, F_future), y (horizon, n_targets))``."""

    def __init__(self, data: SeriesData, starts: np.ndarray) -> None:
        self.data, self.starts = data, starts
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
